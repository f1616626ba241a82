import Foundation
import PyTap
import XCTest

/// Skips a test whose object file or tool is missing, loudly; with CI=true it fails instead,
/// as the pytest suite does for a missing interpreter.
func skipUnlessCI(_ reason: String) throws -> Never {
    reportMissing(reason)
    throw XCTSkip(reason)
}

/// Says loudly that part of a test did not run; with CI=true that is a failure.
func reportMissing(_ reason: String) {
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        XCTFail("missing on a CI machine: \(reason)")
    } else {
        print("SKIP: \(reason)")
    }
}

/// Builds call-frame information in the test: LEB128, CFA instructions, DWARF expressions,
/// CIEs and FDEs in .eh_frame or .debug_frame form, and .eh_frame_hdr.
/// LEB128 encoding (DWARF 5 §7.6).
enum LEB {
    static func unsigned(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes = [UInt8]()
        repeat {
            var byte = UInt8(value & 0x7f)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            bytes.append(byte)
        } while value != 0
        return bytes
    }

    static func signed(_ value: Int64) -> [UInt8] {
        var value = value
        var bytes = [UInt8]()
        while true {
            let byte = UInt8(value & 0x7f)
            value >>= 7
            if (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0) {
                bytes.append(byte)
                return bytes
            }
            bytes.append(byte | 0x80)
        }
    }
}

/// DW_CFA_* instructions.
enum CFA {
    static func advance(_ delta: UInt8) -> [UInt8] { [0x40 | delta] }
    static func advance1(_ delta: UInt8) -> [UInt8] { [0x02, delta] }
    static func advance2(_ delta: UInt16) -> [UInt8] { [0x03, UInt8(delta & 0xff), UInt8(delta >> 8)] }
    static func advance4(_ delta: UInt32) -> [UInt8] { [0x04] + withUnsafeBytes(of: delta.littleEndian) { Array($0) } }
    static func setLocation(absolute: UInt64) -> [UInt8] { [0x01] + withUnsafeBytes(of: absolute.littleEndian) { Array($0) } }
    static func offset(_ register: UInt8, _ factored: UInt64) -> [UInt8] { [0x80 | register] + LEB.unsigned(factored) }
    static func offsetExtended(_ register: UInt64, _ factored: UInt64) -> [UInt8] { [0x05] + LEB.unsigned(register) + LEB.unsigned(factored) }
    static func offsetExtendedSigned(_ register: UInt64, _ factored: Int64) -> [UInt8] { [0x11] + LEB.unsigned(register) + LEB.signed(factored) }
    static func negativeOffsetExtended(_ register: UInt64, _ factored: UInt64) -> [UInt8] { [0x2f] + LEB.unsigned(register) + LEB.unsigned(factored) }
    static func restore(_ register: UInt8) -> [UInt8] { [0xc0 | register] }
    static func restoreExtended(_ register: UInt64) -> [UInt8] { [0x06] + LEB.unsigned(register) }
    static func undefined(_ register: UInt64) -> [UInt8] { [0x07] + LEB.unsigned(register) }
    static func sameValue(_ register: UInt64) -> [UInt8] { [0x08] + LEB.unsigned(register) }
    static func register(_ register: UInt64, in other: UInt64) -> [UInt8] { [0x09] + LEB.unsigned(register) + LEB.unsigned(other) }
    static let rememberState: [UInt8] = [0x0a]
    static let restoreState: [UInt8] = [0x0b]
    static let nop: [UInt8] = [0x00]
    static func defCFA(_ register: UInt64, _ offset: UInt64) -> [UInt8] { [0x0c] + LEB.unsigned(register) + LEB.unsigned(offset) }
    static func defCFASigned(_ register: UInt64, _ factored: Int64) -> [UInt8] { [0x12] + LEB.unsigned(register) + LEB.signed(factored) }
    static func defCFARegister(_ register: UInt64) -> [UInt8] { [0x0d] + LEB.unsigned(register) }
    static func defCFAOffset(_ offset: UInt64) -> [UInt8] { [0x0e] + LEB.unsigned(offset) }
    static func defCFAOffsetSigned(_ factored: Int64) -> [UInt8] { [0x13] + LEB.signed(factored) }
    static func defCFAExpression(_ expression: [UInt8]) -> [UInt8] { [0x0f] + LEB.unsigned(UInt64(expression.count)) + expression }
    static func expression(_ register: UInt64, _ expression: [UInt8]) -> [UInt8] {
        [0x10] + LEB.unsigned(register) + LEB.unsigned(UInt64(expression.count)) + expression
    }
    static func valueExpression(_ register: UInt64, _ expression: [UInt8]) -> [UInt8] {
        [0x16] + LEB.unsigned(register) + LEB.unsigned(UInt64(expression.count)) + expression
    }
    static func valueOffset(_ register: UInt64, _ factored: UInt64) -> [UInt8] { [0x14] + LEB.unsigned(register) + LEB.unsigned(factored) }
    static func valueOffsetSigned(_ register: UInt64, _ factored: Int64) -> [UInt8] { [0x15] + LEB.unsigned(register) + LEB.signed(factored) }
    static func argumentsSize(_ size: UInt64) -> [UInt8] { [0x2e] + LEB.unsigned(size) }
}

/// DW_OP_* operations used by the tests.
enum Op {
    static func breg(_ register: UInt8, _ offset: Int64) -> [UInt8] { [0x70 + register] + LEB.signed(offset) }
    static func bregx(_ register: UInt64, _ offset: Int64) -> [UInt8] { [0x92] + LEB.unsigned(register) + LEB.signed(offset) }
    static func lit(_ value: UInt8) -> [UInt8] { [0x30 + value] }
    static let deref: [UInt8] = [0x06]
    static func derefSize(_ size: UInt8) -> [UInt8] { [0x94, size] }
    static let and: [UInt8] = [0x1a]
    static let ge: [UInt8] = [0x2a]
    static let shl: [UInt8] = [0x24]
    static let plus: [UInt8] = [0x22]
    static func plusConstant(_ value: UInt64) -> [UInt8] { [0x23] + LEB.unsigned(value) }
    /// The expression of x86_64 PLT entries (binutils): CFA = rsp + 8 + ((rip & 15) >= 11 ? 8 : 0).
    static let pltCFA: [UInt8] = breg(7, 8) + breg(16, 0) + lit(15) + and + lit(11) + ge + lit(3) + shl + plus
}

/// Writes one CFI section. Offsets returned are the entries' offsets in the section.
struct CFIWriter {
    var ehFrame = true
    /// Link-time address of the section (for pcrel encodings).
    var address: UInt64 = 0x10_0000
    var bytes: [UInt8] = []
    /// Whether entries use the 64-bit DWARF format (.debug_frame only).
    var dwarf64 = false

    /// A CIE; `augmentationData` follows the augmentation string's letters.
    @discardableResult
    mutating func cie(version: UInt8 = 1, augmentation: String = "zR", codeAlignment: UInt64 = 1, dataAlignment: Int64 = -8,
                      returnAddress: UInt64 = 16, augmentationData: [UInt8] = [0x1b], instructions: [UInt8]) -> Int {
        var body = [UInt8]()
        body += ehFrame ? [0, 0, 0, 0] : (dwarf64 ? [UInt8](repeating: 0xff, count: 8) : [0xff, 0xff, 0xff, 0xff])
        body.append(version)
        body += Array(augmentation.utf8) + [0]
        if version == 4 { body += [8, 0] }
        body += LEB.unsigned(codeAlignment) + LEB.signed(dataAlignment)
        body += version == 1 ? [UInt8(returnAddress)] : LEB.unsigned(returnAddress)
        if augmentation.hasPrefix("z") { body += LEB.unsigned(UInt64(augmentationData.count)) + augmentationData }
        body += instructions
        return append(body)
    }

    /// An FDE whose address fields are given as bytes (encoded by the caller); `addressBytes`
    /// gets the link-time address of the field that follows the CIE pointer.
    @discardableResult
    mutating func fde(cie: Int, addressBytes: (UInt64) -> [UInt8], augmentationData: [UInt8]? = [], instructions: [UInt8]) -> Int {
        let offset = bytes.count
        let lengthSize = dwarf64 ? 12 : 4
        let pointerSize = dwarf64 ? 8 : 4
        let fieldAddress = address + UInt64(offset + lengthSize + pointerSize)
        var body = [UInt8]()
        if ehFrame {
            body += withUnsafeBytes(of: UInt32(offset + lengthSize - cie).littleEndian) { Array($0) }
        } else if dwarf64 {
            body += withUnsafeBytes(of: UInt64(cie).littleEndian) { Array($0) }
        } else {
            body += withUnsafeBytes(of: UInt32(cie).littleEndian) { Array($0) }
        }
        body += addressBytes(fieldAddress)
        if let augmentationData { body += LEB.unsigned(UInt64(augmentationData.count)) + augmentationData }
        body += instructions
        return append(body)
    }

    /// An FDE with pcrel sdata4 addresses (what GCC and Clang write: encoding 0x1b).
    @discardableResult
    mutating func fde(cie: Int, start: UInt64, length: UInt32, instructions: [UInt8]) -> Int {
        fde(cie: cie, addressBytes: { field in
            CFIWriter.sdata4(Int64(bitPattern: start &- field)) + CFIWriter.sdata4(Int64(length))
        }, instructions: instructions)
    }

    private mutating func append(_ body: [UInt8]) -> Int {
        let offset = bytes.count
        var padded = body
        let pointerSize = dwarf64 ? 8 : 4
        while (padded.count + pointerSize) % 8 != 0 { padded += [0] }  // DW_CFA_nop padding
        if dwarf64 {
            bytes += [0xff, 0xff, 0xff, 0xff] + withUnsafeBytes(of: UInt64(padded.count).littleEndian) { Array($0) }
        } else {
            bytes += withUnsafeBytes(of: UInt32(padded.count).littleEndian) { Array($0) }
        }
        bytes += padded
        return offset
    }

    func section(readPointer: @escaping @Sendable (UInt64) -> UInt64? = { _ in nil }) -> CFISection {
        CFISection(ehFrame: ehFrame, copying: ehFrame ? bytes + [0, 0, 0, 0] : bytes, address: ehFrame ? address : 0,
                   readPointer: readPointer)
    }

    static func sdata4(_ value: Int64) -> [UInt8] { withUnsafeBytes(of: Int32(truncatingIfNeeded: value).littleEndian) { Array($0) } }
    static func u64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    /// .eh_frame_hdr with a datarel sdata4 table, for FDEs at the given section offsets.
    func header(at headerAddress: UInt64, entries: [(start: UInt64, fdeOffset: Int)]) -> [UInt8] {
        var header: [UInt8] = [1, 0x1b, 0x03, 0x3b]
        header += CFIWriter.sdata4(Int64(bitPattern: address &- (headerAddress + 4)))
        header += withUnsafeBytes(of: UInt32(entries.count).littleEndian) { Array($0) }
        for entry in entries.sorted(by: { $0.start < $1.start }) {
            header += CFIWriter.sdata4(Int64(bitPattern: entry.start &- headerAddress))
            header += CFIWriter.sdata4(Int64(bitPattern: address + UInt64(entry.fdeOffset) &- headerAddress))
        }
        return header
    }
}

extension UnwindRegisters {
    /// x86_64 registers from DWARF-number/value pairs.
    static func x86_64(_ values: [Int: UInt64]) -> UnwindRegisters {
        var registers = UnwindRegisters(architecture: .x86_64)
        for (register, value) in values { registers[register] = value }
        return registers
    }
}

/// DWARF numbers of the x86_64 registers the tests use.
enum X86 {
    static let rax = 0, rdx = 1, rcx = 2, rbx = 3, rsi = 4, rdi = 5, rbp = 6, rsp = 7
    static let r12 = 12, r13 = 13, r14 = 14, r15 = 15, rip = 16
}
