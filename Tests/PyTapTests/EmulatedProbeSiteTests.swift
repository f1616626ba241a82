import Testing
@testable import PyTap

/// Prologues as the interpreters here were built (objdump of pyenv's libpython and 2.7).
struct EmulatedProbeSiteTests {
    @Test func aLeadingTestBeforeAJumpIsSkipped() {
        // 3.12 _PyObject_Free: test %rsi,%rsi; je ...; push %r12
        #expect(EmulatedProbeSite.offset(in: [0x48, 0x85, 0xf6, 0x0f, 0x84, 0xb7, 0x00, 0x00, 0x00, 0x41, 0x54]) == 3)
        // 2.7 PyObject_Free: test %rdi,%rdi; je rel8
        #expect(EmulatedProbeSite.offset(in: [0x48, 0x85, 0xff, 0x74, 0x10]) == 3)
    }

    @Test func anEmulatedEntryStays() {
        // 3.12 _PyObject_Malloc: push %rbp; 3.6 _PyObject_Realloc: push %r13
        #expect(EmulatedProbeSite.offset(in: [0x55, 0x53, 0x48, 0x89, 0xf3]) == 0)
        #expect(EmulatedProbeSite.offset(in: [0x41, 0x55, 0x41, 0x54]) == 0)
    }

    @Test func aScratchRegisterMayBeWrittenButNotAnArgumentOrTheStack() {
        // 3.11 _PyObject_Malloc: lea -0x1(%rsi),%rax; push %rbx — rax is scratch.
        #expect(EmulatedProbeSite.offset(in: [0x48, 0x8d, 0x46, 0xff, 0x53]) == 4)
        // 3.10 _PyObject_Free: test %rsi,%rsi; je; (mov %rsi,%rdx after the jump is not reached)
        #expect(EmulatedProbeSite.offset(in: [0x48, 0x85, 0xf6, 0x74, 0x20, 0x48, 0x89, 0xf2]) == 3)
        // 3.6 _PyObject_Malloc: mov %rsi,%rdx writes an argument register: the entry.
        #expect(EmulatedProbeSite.offset(in: [0x48, 0x89, 0xf2, 0x31, 0xff, 0x53]) == 0)
        // mov %rsp,%rbp is harmless, mov %rax,%rsp is not.
        #expect(EmulatedProbeSite.offset(in: [0x48, 0x89, 0xe5, 0x53]) == 3)
        #expect(EmulatedProbeSite.offset(in: [0x48, 0x89, 0xc4, 0x53]) == 0)
    }

    @Test func unknownOrCutCodeStaysAtTheEntry() {
        // endbr64; a read from memory; nothing; a lone prefix.
        #expect(EmulatedProbeSite.offset(in: [0xf3, 0x0f, 0x1e, 0xfa, 0x55]) == 0)
        #expect(EmulatedProbeSite.offset(in: [0x48, 0x8b, 0x05, 0x00, 0x00, 0x00, 0x00, 0x55]) == 0)
        #expect(EmulatedProbeSite.offset(in: []) == 0)
        #expect(EmulatedProbeSite.offset(in: [0x48]) == 0)
        #expect(EmulatedProbeSite.offset(in: [0x48, 0x85, 0xf6]) == 0)
        // Five harmless instructions before the jump: more than are skipped.
        #expect(EmulatedProbeSite.offset(in: Array(repeating: [0x48, 0x85, 0xc0], count: 5).flatMap { $0 } + [0x74, 0x00]) == 0)
    }
}
