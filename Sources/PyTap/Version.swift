public enum PyTapVersion { public static let string = "0.1.0" }
