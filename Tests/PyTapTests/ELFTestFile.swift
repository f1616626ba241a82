import CLinux
import Foundation
import PyTap

/// Writes small ELF64 little-endian files for the object-file tests: allocated sections at
/// fixed file offsets (text at 0x1000, build-id note at 0x2000, data at 0x3000 mapped at
/// vaddr 0x4000 like a real RW segment), then non-allocated sections and the headers.
struct TestELF {
    var fileType: UInt16 = 3          // ET_DYN (PIE or shared library); 2 = ET_EXEC
    /// Link-time address of file offset 0 (0 for PIE, 0x400000 for a classic executable).
    var base: UInt64 = 0
    var buildID: [UInt8]? = Array(0xa0...0xb3)
    var debugLink: (name: String, crc: UInt32)? = ("libfake.so.1.debug", 0xdead_beef)
    var withSectionHeaders = true
    /// Extra .symtab entries (local functions, LTO names).
    var extraStaticSymbols: [Symbol] = []
    /// Extra non-allocated sections (name, SHF_* flags, contents).
    var extraSections: [(name: String, flags: UInt64, data: [UInt8])] = []

    static let textOffset = 0x1000
    static let noteOffset = 0x2000
    static let dataOffset = 0x3000
    static let dataAddress: UInt64 = 0x4000
    static let dataBytes = (0..<64).map { UInt8(0x40 + $0) }
    static let bssSize: UInt64 = 0x200
    static let textBytes = (0..<96).map { UInt8(truncatingIfNeeded: 0x90 + $0 * 3) }

    struct Symbol {
        var name: String
        var value: UInt64
        var size: UInt64 = 8
        var type: UInt8 = 1       // STT_OBJECT
        var binding: UInt8 = 1    // STB_GLOBAL
        var section: UInt16
    }

    // Section indices, fixed by the order `build` writes them in.
    static let textIndex: UInt16 = 1
    static let dataIndex: UInt16 = 3

    var dynamicSymbols: [Symbol] { [
        Symbol(name: "_PyRuntime", value: base + TestELF.dataAddress, size: 64, section: TestELF.dataIndex),
        Symbol(name: "PyObject_Call", value: base + 0x1010, size: 32, type: 2, section: TestELF.textIndex),
        Symbol(name: "malloc", value: 0, size: 0, type: 2, section: 0),  // undefined: imported
    ] }

    var staticSymbols: [Symbol] { [
        Symbol(name: "interp_head", value: base + TestELF.dataAddress + 8, binding: 0, section: TestELF.dataIndex),
        // Also in .dynsym, with another value: .dynsym is searched first.
        Symbol(name: "_PyRuntime", value: 0x9999, section: TestELF.dataIndex),
        Symbol(name: "static_helper", value: base + 0x1040, size: 16, type: 2, binding: 0, section: TestELF.textIndex),
    ] + extraStaticSymbols }

    private struct SectionHeader {
        var name: String
        var type: UInt32
        var flags: UInt64 = 0
        var address: UInt64 = 0
        var offset: UInt64
        var size: UInt64
        var link: UInt32 = 0
        var info: UInt32 = 0
        var alignment: UInt64 = 1
        var entrySize: UInt64 = 0
    }

    static func note(buildID: [UInt8]) -> [UInt8] {
        var note = ByteWriter()
        note.u32(4)
        note.u32(UInt32(buildID.count))
        note.u32(3)  // NT_GNU_BUILD_ID
        note.append(Array("GNU\0".utf8))
        note.append(buildID)
        note.pad(to: 4)
        return note.bytes
    }

    static func symbolTable(_ symbols: [Symbol]) -> (table: [UInt8], strings: [UInt8]) {
        var strings: [UInt8] = [0]
        var table = ByteWriter()
        table.append([UInt8](repeating: 0, count: 24))  // index 0: the null symbol
        for symbol in symbols {
            table.u32(UInt32(strings.count))
            strings += Array(symbol.name.utf8) + [0]
            table.u8(symbol.binding << 4 | symbol.type)
            table.u8(0)
            table.u16(symbol.section)
            table.u64(symbol.value)
            table.u64(symbol.size)
        }
        return (table.bytes, strings)
    }

    /// The file's bytes.
    func build() -> [UInt8] {
        var file = [UInt8](repeating: 0, count: TestELF.dataOffset + TestELF.dataBytes.count)
        func put(_ bytes: [UInt8], at offset: Int) {
            if file.count < offset + bytes.count { file += [UInt8](repeating: 0, count: offset + bytes.count - file.count) }
            file.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        }
        func append(_ bytes: [UInt8]) -> UInt64 {
            while file.count % 8 != 0 { file.append(0) }
            let offset = file.count
            file += bytes
            return UInt64(offset)
        }
        put(TestELF.textBytes, at: TestELF.textOffset)
        put(TestELF.dataBytes, at: TestELF.dataOffset)
        let note = buildID.map(TestELF.note) ?? []
        put(note, at: TestELF.noteOffset)

        var sections: [SectionHeader] = [
            SectionHeader(name: ".text", type: 1, flags: 6, address: base + UInt64(TestELF.textOffset),
                          offset: UInt64(TestELF.textOffset), size: UInt64(TestELF.textBytes.count), alignment: 16),
            SectionHeader(name: ".note.gnu.build-id", type: 7, flags: 2, address: base + UInt64(TestELF.noteOffset),
                          offset: UInt64(TestELF.noteOffset), size: UInt64(note.count), alignment: 4),
            SectionHeader(name: ".data", type: 1, flags: 3, address: base + TestELF.dataAddress,
                          offset: UInt64(TestELF.dataOffset), size: UInt64(TestELF.dataBytes.count), alignment: 8),
            SectionHeader(name: ".bss", type: 8, flags: 3, address: base + TestELF.dataAddress + UInt64(TestELF.dataBytes.count),
                          offset: UInt64(TestELF.dataOffset + TestELF.dataBytes.count), size: TestELF.bssSize, alignment: 8),
        ]
        if buildID == nil { sections.remove(at: 1) }
        precondition(sections[Int(TestELF.textIndex) - 1].name == ".text")

        let dynamic = TestELF.symbolTable(dynamicSymbols)
        let dynstrIndex = UInt32(sections.count + 2)
        sections.append(SectionHeader(name: ".dynsym", type: 11, flags: 2, offset: append(dynamic.table),
                                      size: UInt64(dynamic.table.count), link: dynstrIndex, info: 1, alignment: 8, entrySize: 24))
        sections.append(SectionHeader(name: ".dynstr", type: 3, flags: 2, offset: append(dynamic.strings),
                                      size: UInt64(dynamic.strings.count)))
        let statics = TestELF.symbolTable(staticSymbols)
        let strtabIndex = UInt32(sections.count + 2)
        sections.append(SectionHeader(name: ".symtab", type: 2, offset: append(statics.table),
                                      size: UInt64(statics.table.count), link: strtabIndex, info: 1, alignment: 8, entrySize: 24))
        sections.append(SectionHeader(name: ".strtab", type: 3, offset: append(statics.strings), size: UInt64(statics.strings.count)))
        if let debugLink {
            var link = ByteWriter()
            link.append(Array(debugLink.name.utf8) + [0])
            link.pad(to: 4)
            link.u32(debugLink.crc)
            sections.append(SectionHeader(name: ".gnu_debuglink", type: 1, offset: append(link.bytes), size: UInt64(link.count), alignment: 4))
        }
        for extra in extraSections {
            sections.append(SectionHeader(name: extra.name, type: 1, flags: extra.flags, offset: append(extra.data),
                                          size: UInt64(extra.data.count), alignment: 1))
        }
        var names: [UInt8] = [0]
        var nameOffsets = [String: UInt32]()
        for name in sections.map(\.name) + [".shstrtab"] {
            nameOffsets[name] = UInt32(names.count)
            names += Array(name.utf8) + [0]
        }
        sections.append(SectionHeader(name: ".shstrtab", type: 3, offset: append(names), size: UInt64(names.count)))

        // Program headers: text (with the ELF header and the note), data + bss, the note.
        var programHeaders = ByteWriter()
        func segment(_ type: UInt32, _ flags: UInt32, offset: UInt64, address: UInt64, fileSize: UInt64, memorySize: UInt64, align: UInt64) {
            programHeaders.u32(type)
            programHeaders.u32(flags)
            programHeaders.u64(offset)
            programHeaders.u64(address)
            programHeaders.u64(address)
            programHeaders.u64(fileSize)
            programHeaders.u64(memorySize)
            programHeaders.u64(align)
        }
        let textEnd = UInt64(TestELF.noteOffset + note.count)
        segment(1, 5, offset: 0, address: base, fileSize: textEnd, memorySize: textEnd, align: 0x1000)
        segment(1, 6, offset: UInt64(TestELF.dataOffset), address: base + TestELF.dataAddress,
                fileSize: UInt64(TestELF.dataBytes.count), memorySize: UInt64(TestELF.dataBytes.count) + TestELF.bssSize, align: 0x1000)
        if buildID != nil {
            segment(4, 4, offset: UInt64(TestELF.noteOffset), address: base + UInt64(TestELF.noteOffset),
                    fileSize: UInt64(note.count), memorySize: UInt64(note.count), align: 4)
        }
        let phoff = 64
        put(programHeaders.bytes, at: phoff)
        let phnum = programHeaders.count / 56

        var sectionHeaders = ByteWriter()
        sectionHeaders.append([UInt8](repeating: 0, count: 64))
        for section in sections {
            sectionHeaders.u32(nameOffsets[section.name]!)
            sectionHeaders.u32(section.type)
            sectionHeaders.u64(section.flags)
            sectionHeaders.u64(section.address)
            sectionHeaders.u64(section.offset)
            sectionHeaders.u64(section.size)
            sectionHeaders.u32(section.link)
            sectionHeaders.u32(section.info)
            sectionHeaders.u64(section.alignment)
            sectionHeaders.u64(section.entrySize)
        }
        let shoff = withSectionHeaders ? append(sectionHeaders.bytes) : 0

        var header = ByteWriter()
        header.append([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0])
        header.append([UInt8](repeating: 0, count: 8))
        header.u16(fileType)
        header.u16(62)           // EM_X86_64
        header.u32(1)
        header.u64(base + 0x1000)  // e_entry
        header.u64(UInt64(phoff))
        header.u64(shoff)
        header.u32(0)
        header.u16(64)
        header.u16(56)
        header.u16(UInt16(phnum))
        header.u16(64)
        header.u16(withSectionHeaders ? UInt16(sections.count + 1) : 0)
        header.u16(withSectionHeaders ? UInt16(sections.count) : 0)  // .shstrtab is last
        put(header.bytes, at: 0)
        return file
    }

    /// Where the section headers start (e_shoff), for tests that corrupt them.
    static func sectionHeaderOffset(_ file: [UInt8]) -> Int {
        Int(file.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 40, as: UInt64.self) })
    }

    // MARK: Compression

    /// An SHF_COMPRESSED section body: Elf64_Chdr then the zlib stream of `payload`.
    static func compressedSection(_ payload: [UInt8], type: UInt32 = 1, declaredSize: UInt64? = nil) -> [UInt8] {
        var header = ByteWriter()
        header.u32(type)
        header.u32(0)
        header.u64(declaredSize ?? UInt64(payload.count))
        header.u64(1)
        return header.bytes + zlibCompress(payload)
    }

    static func zlibCompress(_ payload: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(compressBound(uLong(payload.count))))
        var outputSize = uLongf(output.count)
        let status = output.withUnsafeMutableBufferPointer { out in
            payload.withUnsafeBufferPointer { input in
                compress(out.baseAddress, &outputSize, input.baseAddress, uLong(input.count))
            }
        }
        precondition(status == Z_OK)
        return Array(output.prefix(Int(outputSize)))
    }

    // MARK: Files

    /// A fresh temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pytap-elf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `bytes` to `directory/name` (creating folders) and returns the path.
    @discardableResult
    static func write(_ bytes: [UInt8], to directory: URL, as name: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
        return url.path
    }
}

extension Array where Element == UInt8 {
    /// Overwrites a little-endian integer at `offset`.
    mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { replaceSubrange(offset..<(offset + $0.count), with: $0) }
    }
}
