import Testing
import PyTap

/// Control characters from a target never reach a terminal raw (issue 6, item 12).
struct TextEscapingTests {
    @Test func controlCharactersAreEscaped() {
        #expect("evil\u{1b}]0;pwned\u{07}\u{1b}[2J.py".escapingControlCharacters == "evil\\x1b]0;pwned\\x07\\x1b[2J.py")
        #expect("a\nb\tc\rd\u{7f}e\u{9b}f\u{0}".escapingControlCharacters == "a\\nb\\tc\\rd\\x7fe\\x9bf\\x00")
        #expect("ünïcödé → λ (app.py:7)".escapingControlCharacters == "ünïcödé → λ (app.py:7)")
    }

    @Test func foldedStacksEscapeControlCharacters() {
        var profile = Profile(metadata: ProfileMetadata(command: "x", pid: 1, pythonVersion: nil, rate: 100,
                                                         startTime: 0, duration: 1))
        let thread = SampledThread(pid: 1, tid: 1, ident: 1, name: nil)
        profile.add(rootFirst: [Frame(kind: .python, name: "f", file: "e\u{1b}[2J.py", line: 1)], thread: thread, time: 0)
        #expect(FoldedWriter().render(profile) == "f (e\\x1b[2J.py:1) 1\n")
    }
}
