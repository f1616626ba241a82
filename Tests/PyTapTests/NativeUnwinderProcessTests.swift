import Foundation
import PyTap
import XCTest

/// The unwinder on a real process's stack: a C program built here with gcc captures its
/// registers (getcontext) and a copy of its stack, and lists the return addresses glibc's
/// backtrace(3) finds; the unwinder, given the same registers, stack and mappings, must
/// find the same frames — through libc's `_start` chain, and through a signal frame.
final class NativeUnwinderProcessTests: XCTestCase {
    static let source = #"""
// Captures its own registers (getcontext) and a copy of its stack, plus the return
// addresses glibc's backtrace(3) finds from the same function, for NativeUnwinderProcessTests.
// Usage: unwind_fixture DIR plain|signal
#define _GNU_SOURCE
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

static const char *directory;

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "r"), *out = fopen(to, "w");
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, in)) > 0) fwrite(buffer, 1, n, out);
    fclose(in);
    fclose(out);
}

__attribute__((noinline)) static void capture(void) {
    static ucontext_t context;
    void *frames[64];
    getcontext(&context);
    int count = backtrace(frames, 64);
    greg_t *g = context.uc_mcontext.gregs;
    // The stack from rsp to the end of its mapping.
    unsigned long sp = g[REG_RSP], end = 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    while (fgets(line, sizeof line, maps)) {
        unsigned long start, stop;
        if (sscanf(line, "%lx-%lx", &start, &stop) == 2 && sp >= start && sp < stop) end = stop;
    }
    fclose(maps);
    char path[4096];
    snprintf(path, sizeof path, "%s/stack.bin", directory);
    FILE *stack = fopen(path, "w");
    fwrite((void *)sp, 1, end - sp, stack);
    fclose(stack);
    snprintf(path, sizeof path, "%s/maps.txt", directory);
    copy_file("/proc/self/maps", path);
    snprintf(path, sizeof path, "%s/registers.txt", directory);
    FILE *out = fopen(path, "w");
    fprintf(out, "rip %llx\nrsp %llx\nrbp %llx\nrbx %llx\nr12 %llx\nr13 %llx\nr14 %llx\nr15 %llx\n",
            g[REG_RIP], g[REG_RSP], g[REG_RBP], g[REG_RBX], g[REG_R12], g[REG_R13], g[REG_R14], g[REG_R15]);
    for (int i = 0; i < count; i++) fprintf(out, "backtrace %lx\n", (unsigned long)frames[i]);
    fclose(out);
}

static void handler(int signal) { (void)signal; capture(); }

static volatile int use_signal;
__attribute__((noinline)) int level3(int x) {
    if (use_signal) raise(SIGUSR1); else capture();
    return x + 1;
}
__attribute__((noinline)) int level2(int x) { return level3(x * 3) * 2; }
__attribute__((noinline)) int level1(int x) { return level2(x + 7) - 1; }

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    directory = argv[1];
    use_signal = strcmp(argv[2], "signal") == 0;
    signal(SIGUSR1, handler);
    return level1(argc) == 0;
}
"""#

    private struct Capture {
        var registers: UnwindRegisters
        var backtrace: [UInt64]
        var stackStart: UInt64
        var stack: [UInt8]
        var mappings: [MemoryMapping]
    }

    private func capture(_ mode: String, in directory: URL) throws -> Capture {
        let executable = directory.appendingPathComponent("unwind_fixture")
        if !FileManager.default.fileExists(atPath: executable.path) {
            let sourceURL = directory.appendingPathComponent("unwind_fixture.c")
            try Self.source.write(to: sourceURL, atomically: true, encoding: .utf8)
            // No frame pointers: the frames of the fixture need its CFI.
            try run("/usr/bin/gcc", ["-O2", "-fomit-frame-pointer", "-o", executable.path, sourceURL.path])
        }
        let output = directory.appendingPathComponent(mode)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try run(executable.path, [output.path, mode])
        var registers = UnwindRegisters(architecture: .x86_64)
        var backtrace = [UInt64]()
        let names = ["rip": X86.rip, "rsp": X86.rsp, "rbp": X86.rbp, "rbx": X86.rbx, "r12": 12, "r13": 13, "r14": 14, "r15": 15]
        for line in try String(contentsOf: output.appendingPathComponent("registers.txt"), encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: " ")
            let value = try XCTUnwrap(UInt64(fields[1], radix: 16))
            if fields[0] == "backtrace" { backtrace.append(value) } else { registers[try XCTUnwrap(names[String(fields[0])])] = value }
        }
        let stack = try [UInt8](Data(contentsOf: output.appendingPathComponent("stack.bin")))
        let maps = try String(contentsOf: output.appendingPathComponent("maps.txt"), encoding: .utf8)
        return Capture(registers: registers, backtrace: backtrace, stackStart: try XCTUnwrap(registers[X86.rsp]), stack: stack,
                       mappings: MemoryMapping.parse(maps))
    }

    private func run(_ path: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "\(path) \(arguments)")
    }

    private func unwind(_ capture: Capture) throws -> UnwindResult {
        let memory = FakeMemory()
        memory.map(at: capture.stackStart, size: capture.stack.count)
        memory.write(capture.stack, at: capture.stackStart)
        let cache = UnwindTableCache()
        var modules = [(range: Range<UInt64>, module: UnwindModule)]()
        let byPath = Dictionary(grouping: capture.mappings.filter { $0.path?.hasPrefix("/") == true }, by: { $0.path! })
        for (path, mappings) in byPath {
            guard let elf = try? ELFFile(path: path) else { continue }
            let object = try LoadedObject(path: path, elf: elf, mappings: mappings, debugLocator: DebugFileLocator(roots: [""]))
            let module = UnwindModule(table: try cache.table(for: object), loadBias: object.loadBias)
            for mapping in mappings where mapping.executable { modules.append((mapping.start..<mapping.end, module)) }
        }
        return NativeUnwinder().unwind(registers: capture.registers, memory: memory) { address in
            modules.first { $0.range.contains(address) }?.module
        }
    }

    func testUnwindMatchesBacktrace() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/gcc") else { try skipUnlessCI("no gcc") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pytap-unwind-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for mode in ["plain", "signal"] {
            let capture = try capture(mode, in: directory)
            let result = try unwind(capture)
            // backtrace's first entry is its own return address in capture(); the rest are callers.
            XCTAssertGreaterThan(capture.backtrace.count, 5, mode)
            XCTAssertEqual(result.frames.dropFirst().map(\.pc), Array(capture.backtrace.dropFirst()),
                           "\(mode): \(result.frames.map { "\(String($0.pc, radix: 16)) \($0.method)" }) stop \(result.stop)")
            XCTAssertEqual(result.stop, .outermostFrame, mode)
            XCTAssertEqual(result.frames.contains { $0.method == .signal }, mode == "signal", mode)
            XCTAssertFalse(result.frames.contains { $0.method == .framePointer }, "\(mode): CFI covers every frame")
        }
    }
}
