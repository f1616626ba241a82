/// Why a layout could not be had.
public enum LayoutError: Error, Equatable, Sendable {
    /// pytap has no table for this version and the target does not describe itself.
    case unsupportedVersion(String)
    /// A field the reader needs is missing from the layout of this version.
    case missingField(LayoutField, version: String)
    /// The target's `_Py_DebugOffsets` is present but not understood.
    case badDebugOffsets(String)
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
        try self.init(version: version, table: table, traits: traits)
    }

    /// A layout from an explicit table; throws `missingField` when it lacks a field the
    /// reader of these traits uses.
    public init(version: PythonVersion, table: [LayoutField: FieldSpec], traits: VersionTraits) throws {
        self.version = version
        self.traits = traits
        self.values = table.mapValues(\.value)
        self.sources = table.mapValues { _ in .table }
        // A gap in a table is found here, once, not as a wrong default in the middle of a walk.
        if let missing = PythonLayout.requiredFields(for: traits).first(where: { values[$0] == nil }) {
            throw LayoutError.missingField(missing, version: version.description)
        }
    }

    /// The fields every reader of a version with these traits uses.
    public static func requiredFields(for traits: VersionTraits) -> [LayoutField] {
        var fields: [LayoutField] = [
            .interpNext, .interpThreadsHead, .interpModules, .tstateNext, .tstateInterp, .tstateThreadID,
            .codeFilename, .codeName, .codeFirstLineno, .codeLineTable,
            .objectType, .varObjectSize, .typeName, .typeBasicSize, .typeFlags, .typeDictOffset,
            .bytesData, .unicodeLength, .unicodeData, .longDigits, .digitSize,
            .dictEntrySize, .dictEntryKey, .dictEntryValue, .dictUsed, .moduleDict,
            .tupleItems, .floatValue, .cellReference,
        ]
        switch traits.frameModel {
        case .frameObjects:
            fields += [.tstateFrame, .frameBack, .frameCode, .frameLasti, .frameLocalsPlus,
                       .codeNLocals, .codeVarNames, .codeCellVars, .codeFreeVars]
        case .interpreterFrames:
            fields += [.iframePrevious, .iframeCode, .iframeInstruction, .iframeOwner, .iframeLocalsPlus, .frameOwnedByGenerator,
                       .codeCodeAdaptive, .codeUnitSize, .codeQualname, .codeLocalsPlusNames, .codeLocalsPlusKinds]
        }
        switch traits.strings {
        case .python2: fields += [.unicodeCharSize27, .intValue27]
        case .pep393: fields += [.unicodeState, .asciiObjectSize, .compactUnicodeObjectSize]
        }
        switch traits.dicts {
        case .python27: fields += [.dictMask27, .dictTable27]
        case .compact36: fields += [.dictKeys, .dictValues, .keysIndices, .keysNentries, .keysSize]
        case .compact311: fields += [.dictKeys, .dictValues, .keysIndices, .keysNentries, .keysLog2IndexBytes, .keysKind,
                                     .dictUnicodeEntrySize, .dictKeysGeneral, .dictValuesValues]
        }
        if traits.longs == .taggedValue { fields.append(.longTag) }
        switch traits.gcState {
        case .collectingSymbol: break
        case .runtime: fields.append(.runtimeGCCollecting)
        case .interpreter: fields.append(.interpGCCollecting)
        }
        switch traits.handledException {
        case .threadState: fields += [.tstateExcType27, .tstateCurrentException]
        case .errorStack: fields += [.tstateExcInfo, .errStackItemException, .errStackItemPrevious, .tstateCurrentException]
        }
        if traits.managedDicts != .dictOffset { fields.append(.heapTypeCachedKeys) }
        if traits.managedDicts == .inlineValues { fields.append(.dictValuesValid) }
        return fields
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
