import Testing
import PyTap

/// Parsing of /proc/PID/maps (`MemoryMapping.parse`) and /proc/PID/stat (`ProcessStat`).
@Suite struct ProcMapsAndStatTests {
    static let maps = """
    55d0c0a00000-55d0c0a2c000 r--p 00000000 08:01 1835017                    /usr/bin/python3.12
    55d0c0a2c000-55d0c0d1b000 r-xp 0002c000 08:01 1835017                    /usr/bin/python3.12
    7f3a5c000000-7f3a5c021000 rw-p 00000000 00:00 0\u{20}
    7f3a60000000-7f3a60100000 r-xp 00000000 fd:00 42                         /home/user/my project/lib  x.so
    7f3a61000000-7f3a61001000 r--p 00001000 fd:00 43                         /tmp/old lib.so (deleted)
    7ffd5e000000-7ffd5e021000 rw-p 00000000 00:00 0                          [stack]
    55d0c2000000-55d0c2100000 rw-p 00000000 00:00 0                          [heap]
    ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
    7f3a62000000-7f3a62001000 rw-s 00000000 00:05 9                          /dev/shm/a (deleted) b
    garbage line
    zzzz-1000 r-xp 00000000 08:01 1 /x
    1000-2000 r-xp 00000000 08:01
    1000-2000 r 00000000 08:01 1 /x
    1000-2000 r-xp 0000zz00 08:01 1 /x
    1000 r-xp 00000000 08:01 1 /x
    1000-2000 r-xp 00000000 08:01 notanumber /x

    """

    @Test func parsesFileAnonymousAndSpecialMappingsAndSkipsMalformedLines() throws {
        let mappings = MemoryMapping.parse(ProcMapsAndStatTests.maps)
        #expect(mappings.count == 9)
        let text = mappings[1]
        #expect(text.start == 0x55d0_c0a2_c000 && text.end == 0x55d0_c0d1_b000)
        #expect(text.readable && !text.writable && text.executable)
        #expect(text.fileOffset == 0x2c000 && text.inode == 1_835_017)
        #expect(text.path == "/usr/bin/python3.12" && !text.deleted && text.isFile)
        #expect(text.size == 0x2ef000)
        #expect(text.contains(0x55d0_c0a2_c000) && text.contains(0x55d0_c0d1_afff) && !text.contains(0x55d0_c0d1_b000))

        // Anonymous memory: no path (even with the trailing space the kernel writes).
        let anonymous = mappings[2]
        #expect(anonymous.path == nil && !anonymous.isFile && anonymous.readable && anonymous.writable)

        // Spaces inside the path are kept, including doubled ones.
        #expect(mappings[3].path == "/home/user/my project/lib  x.so")
        #expect(mappings[3].inode == 42 && !mappings[3].deleted)

        // "(deleted)" at the end is a flag, not part of the path; elsewhere it is the path.
        #expect(mappings[4].path == "/tmp/old lib.so" && mappings[4].deleted && mappings[4].fileOffset == 0x1000)
        #expect(mappings[8].path == "/dev/shm/a (deleted) b" && !mappings[8].deleted)

        #expect(mappings[5].path == "[stack]" && !mappings[5].isFile)
        #expect(mappings[6].path == "[heap]" && !mappings[6].isFile)
        let vsyscall = mappings[7]
        #expect(vsyscall.start == 0xffff_ffff_ff60_0000 && !vsyscall.readable && vsyscall.executable)
    }

    @Test func emptyAndGarbageTextGiveNoMappings() {
        #expect(MemoryMapping.parse("").isEmpty)
        #expect(MemoryMapping.parse("\n\n\n").isEmpty)
        #expect(MemoryMapping.parse("- - - - -").isEmpty)
        #expect(MemoryMapping.parse(String(repeating: "x", count: 10_000)).isEmpty)
        #expect(MemoryMapping.parse("ffffffffffffffffff-1 r-xp 0 0:0 0 /x").isEmpty)
    }

    /// A stat line with the given command name; fields after it as in proc(5).
    private func statLine(command: String, state: String = "S", parent: Int = 1, user: String = "150", system: Int = 25,
                          start: Int = 98_765) -> String {
        "4242 (\(command)) \(state) \(parent) 4242 4242 0 -1 4194560 1000 0 0 0 \(user) \(system) 0 0 20 0 3 0 \(start) 1234567 890 18446744073709551615\n"
    }

    @Test func statFieldsAfterTheCommandName() throws {
        let stat = try #require(ProcessStat(text: statLine(command: "python3")))
        #expect(stat == ProcessStat(state: "S", parentPID: 1, userTicks: 150, systemTicks: 25, startTicks: 98_765))
        #expect(!stat.isRunning)
        #expect(ProcessStat(text: statLine(command: "python3", state: "R"))?.isRunning == true)
    }

    @Test func statCommandNameMayHoldParenthesesAndSpaces() throws {
        // comm is up to 15 bytes of anything, including ") " and digits.
        for command in ["evil) R 9 (x", "a) (b", ")", "(", "two words", "x) Z 1 2 3"] {
            let stat = try #require(ProcessStat(text: statLine(command: command, state: "D", parent: 77)), "\(command)")
            #expect(stat.state == "D" && stat.parentPID == 77 && stat.startTicks == 98_765, "\(command)")
        }
    }

    @Test func stateAloneIsTheFieldAfterTheCommandName() {
        func state(_ text: String) -> Character? { ProcessStat.state(in: Array(text.utf8)[...]) }
        for command in ["python3", "evil) R 9 (x", "a) (b", ")", "(", "two words", "x) Z 1 2 3"] {
            #expect(state(statLine(command: command, state: "D")) == "D", "\(command)")
            #expect(state(statLine(command: command, state: "R")) == "R", "\(command)")
        }
        // A slice that does not start at 0, as the reader's buffer gives.
        let bytes = Array(("xx" + statLine(command: "p", state: "t")).utf8)
        #expect(ProcessStat.state(in: bytes[2...]) == "t")
        #expect(state("") == nil)
        #expect(state("4242 python3 S 1 2 3") == nil)
        #expect(state("4242 (python3)") == nil)
        #expect(state("4242 (python3) ") == nil)
        #expect(state("4242 (python3)S 1") == nil)
    }

    @Test func malformedStatIsRejected() {
        #expect(ProcessStat(text: "") == nil)
        #expect(ProcessStat(text: "4242 python3 S 1 2 3") == nil)
        // Too few fields after the name.
        #expect(ProcessStat(text: "4242 (python3) S 1 4242 4242 0 -1") == nil)
        #expect(ProcessStat(text: "4242 (python3)") == nil)
        // Non-numeric numbers read as 0 rather than failing.
        let odd = ProcessStat(text: statLine(command: "p", user: "x"))
        #expect(odd?.userTicks == 0)
    }
}
