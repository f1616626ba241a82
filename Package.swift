// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "pytap",
    products: [
        .executable(name: "pytap", targets: ["pytap"]),
        .library(name: "PyTap", targets: ["PyTap"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // What Glibc does not import: variadic syscalls, GNU-only calls, kernel structs, zlib,
        // libdeflate (inflating debug sections; static in release builds), the C++ runtime's
        // demangler (libstdc++: the Swift runtime links it anyway).
        .target(
            name: "CLinux",
            linkerSettings: [.linkedLibrary("z"), .linkedLibrary("deflate"), .linkedLibrary("stdc++")]
        ),
        // Native sampling (issue 8): the loader of pytap's BPF program (libbpf, static in
        // release builds) and the build plugin that compiles bpf/sample.bpf.c into PyTap.
        .target(
            name: "CBPF",
            linkerSettings: [.linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z")]
        ),
        .plugin(name: "BPFProgram", capability: .buildTool()),
        .target(
            name: "PyTap",
            dependencies: [
                "CLinux",
                "CBPF",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            plugins: ["BPFProgram"]
        ),
        .executableTarget(
            name: "pytap",
            dependencies: [
                "PyTap",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "PyTapTests",
            // "pytap": the CLI's failure formatter is tested too (@testable import).
            // SwiftProtobuf: pprof output is decoded by code generated from profile.proto
            // (pprof/profile.pb.swift), independent of the library's hand-written encoder.
            dependencies: ["PyTap", "CLinux", "pytap", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            // Expected outputs, read from disk by the writer tests; the pprof schema.
            exclude: ["Golden", "pprof/profile.proto"]
        ),
    ]
)
