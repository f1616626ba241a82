/// Why a layout could not be had.
public enum LayoutError: Error, Equatable, Sendable {
    /// pytap has no table for this version and the target does not describe itself.
    case unsupportedVersion(String)
    /// A field the reader needs is missing from the layout of this version.
    case missingField(LayoutField, version: String)
    /// The target's `_Py_DebugOffsets` is present but not understood.
    case badDebugOffsets(String)
    /// A free-threaded (no-GIL) build, whose object layout pytap does not read yet.
    case freeThreadedBuild(String)
}

/// The structure layout of one target interpreter: the built-in table of its minor
/// version, overridden by what the interpreter says of itself (`_Py_DebugOffsets`, 3.13+).
public struct PythonLayout: Sendable {
    public enum Source: String, Sendable {
        case table
        case debugOffsets = "_Py_DebugOffsets"
    }

    public let version: PythonVersion
    public let traits: VersionTraits
    public private(set) var values: [LayoutField: Int]
    public private(set) var sources: [LayoutField: Source]
    /// Fields where the target's own description disagreed with the table (the target won).
    public private(set) var mismatches: [(field: LayoutField, table: Int, target: Int)] = []

    public init(version: PythonVersion) throws {
        guard let table = LayoutTables.table(for: version.minorVersion),
              let traits = VersionTraits.traits(for: version.minorVersion) else {
            throw LayoutError.unsupportedVersion(version.description)
        }
        self.version = version
        self.traits = traits
        self.values = table.mapValues(\.value)
        self.sources = table.mapValues { _ in .table }
    }

    /// Overrides fields with the target's own values, recording disagreements.
    public mutating func apply(targetValues: [LayoutField: Int]) {
        for (field, value) in targetValues {
            if let old = values[field], old != value {
                mismatches.append((field, old, value))
            }
            values[field] = value
            sources[field] = .debugOffsets
        }
        mismatches.sort { $0.field.rawValue < $1.field.rawValue }
    }

    public subscript(field: LayoutField) -> Int? { values[field] }

    /// The value of a field the caller cannot work without.
    public func require(_ field: LayoutField) throws -> Int {
        guard let value = values[field] else {
            throw LayoutError.missingField(field, version: version.description)
        }
        return value
    }
}
