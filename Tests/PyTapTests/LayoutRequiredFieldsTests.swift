import Testing
import PyTap

/// Version facts are data: a table lacking a field its version's reader uses is an error
/// when the layout is made, not a default found wrong in the middle of a walk.
@Suite struct LayoutRequiredFieldsTests {
    @Test(arguments: LayoutTables.versions)
    func everyTableHasWhatItsReaderUses(version: PythonMinorVersion) throws {
        let layout = try PythonLayout(version: PythonVersion(major: version.major, minor: version.minor, micro: 0))
        for field in PythonLayout.requiredFields(for: layout.traits) {
            #expect(layout[field] != nil, "\(version): \(field.rawValue)")
        }
    }

    @Test(arguments: [(PythonMinorVersion(3, 12), LayoutField.codeUnitSize), (PythonMinorVersion(3, 10), .frameLocalsPlus),
                      (PythonMinorVersion(2, 7), .objectType), (PythonMinorVersion(3, 14), .frameOwnedByGenerator)])
    func aMissingFieldIsAnErrorAtLoad(version: PythonMinorVersion, field: LayoutField) throws {
        var table = try #require(LayoutTables.table(for: version))
        let traits = try #require(VersionTraits.traits(for: version))
        let full = PythonVersion(major: version.major, minor: version.minor, micro: 0)
        _ = try PythonLayout(version: full, table: table, traits: traits)
        table[field] = nil
        #expect(throws: LayoutError.missingField(field, version: full.description)) {
            try PythonLayout(version: full, table: table, traits: traits)
        }
    }
}
