import Foundation
import PyTap
import XCTest

final class SymbolIndexTests: XCTestCase {
    private func symbol(_ name: String, _ value: UInt64, size: UInt64, type: UInt8 = ELFSymbol.typeFunction,
                        binding: UInt8 = 1, section: UInt16 = 12) -> ELFSymbol {
        ELFSymbol(name: name, value: value, size: size, type: type, binding: binding, sectionIndex: section)
    }

    func testLookupRespectsSizesAliasesAndNesting() {
        let index = SymbolIndex(symbols: [
            symbol("__libc_malloc", 0x1000, size: 0x40, binding: 0),
            symbol("malloc", 0x1000, size: 0x40, binding: 2),
            symbol("__malloc", 0x1000, size: 0x40),
            symbol("big", 0x2000, size: 0x100),
            symbol("inner_label", 0x2010, size: 0x10),
            symbol("asm_stub", 0x3000, size: 0),
            symbol("memcpy", 0x3100, size: 0x20, type: ELFSymbol.typeIndirectFunction),
            symbol("a_variable", 0x4000, size: 0x100, type: ELFSymbol.typeObject),
            symbol("imported", 0x5000, size: 0x10, section: 0),
            symbol("absolute", 0x6000, size: 0x10, section: 0xfff1),
        ])
        XCTAssertEqual(index.count, 5)
        XCTAssertEqual(index.lookup(0x1000)?.name, "__malloc", "global beats weak and local")
        XCTAssertEqual(index.lookup(0x103f)?.offset, 0x3f)
        XCTAssertNil(index.lookup(0x1040), "past the end of a sized function")
        XCTAssertNil(index.lookup(0xfff))
        XCTAssertEqual(index.lookup(0x2015)?.name, "inner_label")
        XCTAssertEqual(index.lookup(0x2020)?.name, "big", "past the inner symbol: the enclosing function")
        XCTAssertEqual(index.lookup(0x2020)?.offset, 0x20)
        XCTAssertEqual(index.lookup(0x30ff)?.name, "asm_stub", "unsized: up to the next symbol")
        XCTAssertEqual(index.lookup(0x3100)?.name, "memcpy", "ifunc")
        XCTAssertNil(index.lookup(0x4010), "objects are not functions")
        XCTAssertNil(index.lookup(0x5000))
        XCTAssertNil(index.lookup(0x6000))
        XCTAssertNil(SymbolIndex(symbols: []).lookup(0x1000))
    }

    /// `nm --defined-only -S` of a file: functions (T, t, W, w, i) with their sizes.
    private func nmFunctions(_ arguments: [String]) throws -> [(address: UInt64, size: UInt64, name: String)] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nm")
        process.arguments = ["--defined-only", "-S"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "nm \(arguments)")
        var result = [(address: UInt64, size: UInt64, name: String)]()
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 4, "TtWwi".contains(fields[2]),
                  let address = UInt64(fields[0], radix: 16), let size = UInt64(fields[1], radix: 16), address != 0 else { continue }
            // nm prints versioned dynamic names as name@@VERSION.
            let name = String(fields[3].split(separator: "@").first ?? fields[3])
            result.append((address, size, name))
        }
        return result
    }

    /// Every function nm lists is found at its start and its last byte, by one of the names at its address.
    private func compare(_ index: SymbolIndex, with functions: [(address: UInt64, size: UInt64, name: String)], file: String) {
        XCTAssertGreaterThan(functions.count, 100, file)
        let namesAt = Dictionary(grouping: functions, by: \.address).mapValues { Set($0.map(\.name)) }
        let starts = namesAt.keys.sorted()
        var nextStartAfter = [UInt64: UInt64]()
        for (index, start) in starts.enumerated() { nextStartAfter[start] = index + 1 < starts.count ? starts[index + 1] : .max }
        var mismatches = [String]()
        for function in functions {
            guard let match = index.lookup(function.address) else {
                mismatches.append("\(function.name): not found")
                continue
            }
            if match.offset != 0 || !(namesAt[function.address] ?? []).contains(match.name) {
                mismatches.append("\(function.name) at 0x\(String(function.address, radix: 16)): \(match.name)+\(match.offset)")
            }
            // The last byte belongs to it unless another function starts inside it.
            guard function.size > 1 else { continue }
            let last = function.address + function.size - 1
            let nextStart = nextStartAfter[function.address] ?? .max
            if nextStart > last {
                if index.lookup(last)?.function.address != function.address { mismatches.append("\(function.name): last byte") }
                if nextStart > last + 1, let after = index.lookup(last + 1), after.function.address == function.address {
                    mismatches.append("\(function.name): found past its end")
                }
            }
        }
        XCTAssertEqual(mismatches.count, 0, "\(file): \(mismatches.prefix(10))")
    }

    func testLibcDynamicSymbolsMatchNm() throws {
        let path = "/lib/x86_64-linux-gnu/libc.so.6"
        guard FileManager.default.fileExists(atPath: path) else { try skipUnlessCI("no \(path)") }
        let index = SymbolIndex(elf: try ELFFile(path: path))
        compare(index, with: try nmFunctions(["-D", path]), file: path)
    }

    func testDebugFilesAddTheirSymbols() throws {
        var checked = 0
        for path in ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/python3.11"] {
            guard FileManager.default.fileExists(atPath: path) else {
                reportMissing("\(path): not on this machine")
                continue
            }
            let elf = try ELFFile(path: path)
            guard let debug = DebugFileLocator(roots: [""]).debugFile(for: elf, targetPath: path) else {
                reportMissing("\(path): no debug file (install its -dbg package)")
                continue
            }
            let cache = SymbolIndexCache()
            let index = cache.index(for: elf, debugFile: debug)
            XCTAssertTrue(index === cache.index(for: elf, debugFile: nil), "cached by build-id")
            let withoutDebug = SymbolIndex(elf: elf)
            XCTAssertGreaterThan(index.count, withoutDebug.count + 1000, "\(path): the debug file's .symtab adds static functions")
            compare(index, with: try nmFunctions([debug.path]), file: debug.path)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0, "no object with a debug file")
    }
}
