import Foundation
import PyTap
import XCTest

/// Rust v0 names (`_R…`). Expected strings are rustc-demangle's `{:#}` output, from its own
/// test suite (src/v0.rs); the cross-check runs LLVM's demangler (`llvm-cxxfilt`) on the
/// names both print alike.
final class RustV0DemanglerTests: XCTestCase {
    private func check(_ pairs: [(String, String)], file: StaticString = #filePath, line: UInt = #line) {
        for (mangled, expected) in pairs {
            XCTAssertEqual(SymbolDemangler.demangle(mangled), expected, mangled, file: file, line: line)
        }
    }

    func testPathsClosuresAndImpls() {
        check([
            ("_RNvCs15kBYyAo9fc_7mycrate7example", "mycrate::example"),
            ("_RNvC6_123foo3bar", "123foo::bar"),
            ("_RC4f128", "f128"),
            ("_RNCNCNgCs6DXkGYLi8lr_2cc5spawn00B5_", "cc::spawn::{closure#0}::{closure#0}"),
            ("_RNCINkXs25_NgCsbmNqQUJIY6D_4core5sliceINyB9_4IterhENuNgNoBb_4iter8iterator8Iterator9rpositionNCNgNpB9_6memchr7memrchrs_0E0Bb_",
             "<core::slice::Iter<u8> as core::iter::iterator::Iterator>::rposition::<core::slice::memchr::memrchr::{closure#1}>::{closure#0}"),
            ("_RNvMsr_NtCs3ssYzQotkvD_3std4pathNtB5_7PathBuf3newCs15kBYyAo9fc_7mycrate", "<std::path::PathBuf>::new"),
            ("_RINvNtCs9ltgdHTiPiY_4core3ptr13drop_in_placeNtNtCsaXdKcZCc1qi_5alloc3vec3VecEB4_",
             "core::ptr::drop_in_place::<alloc::vec::Vec>"),
            // From a program built by rustc 1.95 (std is v0-mangled), as llvm-cxxfilt 14 prints them.
            ("_RINvMNtNtCsjrHSEGnQ3l9_3std4sync9once_lockINtB3_8OnceLockNtNtB7_2fs4FileE10initializeNCNvNtNtNtB7_3sys6random5linux9getrandom0NtNtNtB7_2io5error5ErrorEB7_",
             "<std::sync::once_lock::OnceLock<std::fs::File>>::initialize::<std::sys::random::linux::getrandom::{closure#0}, std::io::error::Error>"),
            ("_RINvMs4_NtCsgY6Mt91CT9J_14rustc_demangle2v0NtB6_7Printer13print_backrefNCNvB2_10print_paths_0EB8_",
             "<rustc_demangle::v0::Printer>::print_backref::<<rustc_demangle::v0::Printer>::print_path::{closure#1}>"),
            ("_RINvMs6_NtCsgvbsrvnw3yD_9hashbrown3rawINtB6_8RawTableTNtNtCslNYArtu3iFV_5alloc6string6StringINtNtBU_3vec3VecTlReEEEE14reserve_rehashNCINvNtB8_3map11make_hasherBQ_B1s_NtNtNtCsjrHSEGnQ3l9_3std4hash6random11RandomStateE0ECskK7mfDs1mzF_1m.llvm.2815049047976828270",
             "<hashbrown::raw::RawTable<(alloc::string::String, alloc::vec::Vec<(i32, &str)>)>>::reserve_rehash::<hashbrown::map::make_hasher<alloc::string::String, alloc::vec::Vec<(i32, &str)>, std::hash::random::RandomState>::{closure#0}>"),
            ("_RNvNtNtCsjrHSEGnQ3l9_3std2io5stdio19OUTPUT_CAPTURE_USED.0", "std::io::stdio::OUTPUT_CAPTURE_USED.0"),
        ])
    }

    func testPunycodeIdentifiers() {
        check([("_RNqCs4fqI2P2rA04_11utf8_identsu30____7hkackfecea1cbdathfdh9hlq6y",
                "utf8_idents::საჭმელად_გემრიელი_სადილი")])
    }

    func testDynTraitsAndTypes() {
        check([
            ("_RINbNbCskIICzLVDPPb_5alloc5alloc8box_freeDINbNiB4_5boxed5FnBoxuEp6OutputuEL_ECs1iopQbuBiw2_3std",
             "alloc::alloc::box_free::<dyn alloc::boxed::FnBox<(), Output = ()>>"),
            ("_RMC0DNtC5krate5Traitp1NKj0_EL_", "<dyn krate::Trait<N = 0>>"),
            ("_RMC0INtC8arrayvec8ArrayVechKj7b_E", "<arrayvec::ArrayVec<u8, 123>>"),
            ("_RMC0WmRm1_m9_", "<u32 is 1..=9>"),
            ("_RMC0WmORm1_m2_Rm5_m6_E", "<u32 is 1..=2 | 5..=6>"),
            ("_RMC0FG0_RL1_hRL0_hEu", "<for<'a, 'b> fn(&'a u8, &'b u8)>"),
            ("_RMC0FUKCmEu", "<unsafe extern \"C\" fn(u32)>"),
            ("_RMC0FK9rust_calljEb", "<extern \"rust-call\" fn(usize) -> bool>"),
            ("_RMC0SQh", "<[&mut u8]>"),
            ("_RMC0POPe", "<*const *mut *const str>"),
            ("_RMC0TmhE", "<(u32, u8)>"),
            ("_RMC0TmE", "<(u32,)>"),
            ("_RMC0TE", "<()>"),
            ("_RMC0Ahj3_", "<[u8; 3]>"),
        ])
    }

    func testConstants() {
        let constants = [
            ("p", "_"), ("j7b_", "123"), ("hb_", "11"), ("off00ff00ff00ff00ff_", "0xff00ff00ff00ff00ff"),
            ("s98_", "152"), ("anb_", "-11"), ("b0_", "false"), ("b1_", "true"), ("c76_", "'v'"),
            ("c22_", "'\"'"), ("ca_", "'\\n'"), ("c2202_", "'∂'"),
            ("e616263_", "{*\"abc\"}"), ("e27_", "{*\"'\"}"), ("e090a_", "{*\"\\t\\n\"}"), ("ee28882c3bc_", "{*\"∂ü\"}"),
            ("Re616263_", "\"abc\""), ("Ree28882c3bc_", "\"∂ü\""),
            ("Rp", "{&_}"), ("Rh7b_", "{&123}"), ("Rb0_", "{&false}"), ("Rc58_", "{&'X'}"), ("RRRh0_", "{&&&0}"),
            ("RRRe_", "{&&\"\"}"), ("QAE", "{&mut []}"),
            ("AE", "{[]}"), ("Aj0_E", "{[0]}"), ("Ah1_h2_h3_E", "{[1, 2, 3]}"), ("ARe61_Re62_Re63_E", "{[\"a\", \"b\", \"c\"]}"),
            ("AAh1_h2_EAh3_h4_EE", "{[[1, 2], [3, 4]]}"),
            ("TE", "{()}"), ("Tj0_E", "{(0,)}"), ("Th1_b0_E", "{(1, false)}"),
            ("TRe616263_c78_RAh1_h2_h3_EE", "{(\"abc\", 'x', &[1, 2, 3])}"),
            ("VNvINtNtC4core6option6OptionjE4NoneU", "{core::option::Option::<usize>::None}"),
            ("VNvINtNtC4core6option6OptionjE4SomeTj0_E", "{core::option::Option::<usize>::Some(0)}"),
            ("VNtC3foo3BarS1sRe616263_2chc78_5sliceRAh1_h2_h3_EE", "{foo::Bar { s: \"abc\", ch: 'x', slice: &[1, 2, 3] }}"),
        ]
        check(constants.map { ("_RIC0K\($0.0)E", "::<\($0.1)>") })
    }

    func testSuffixes() {
        check([
            ("_RC3foo.llvm.9D1C9369", "foo"),
            ("_RC3foo.llvm.9D1C9369@@16", "foo"),
            ("_RNvC9backtrace3foo.llvm.A5310EB9", "backtrace::foo"),
            ("_RNvNtNtNtNtCs92dm3009vxr_4rand4rngs7adapter9reseeding4fork23FORK_HANDLER_REGISTERED.0.0",
             "rand::rngs::adapter::reseeding::fork::FORK_HANDLER_REGISTERED.0.0"),
        ])
    }

    /// Backrefs that double the output each time: 2^6 copies here, and capped work (not a
    /// hang or a trap) when there are many more.
    func testBackrefExpansionIsBounded() {
        let tuple = "((((((_, _), (_, _)), ((_, _), (_, _))), (((_, _), (_, _)), ((_, _), (_, _)))), "
            + "((((_, _), (_, _)), ((_, _), (_, _))), (((_, _), (_, _)), ((_, _), (_, _))))), "
            + "(((((_, _), (_, _)), ((_, _), (_, _))), (((_, _), (_, _)), ((_, _), (_, _)))), "
            + "((((_, _), (_, _)), ((_, _), (_, _))), (((_, _), (_, _)), ((_, _), (_, _))))))"
        check([("_RMC0TTTTTTpB8_EB7_EB6_EB5_EB4_EB3_E", "<\(tuple)>")])
        // 40 doublings: 2^40 copies if nothing stopped it.
        let exploding = "_RMC0" + String(repeating: "T", count: 40) + "p"
            + (3...42).reversed().map { "B\(base62($0))_E" }.joined()
        XCTAssertEqual(SymbolDemangler.demangle(exploding), exploding)
    }

    private func base62(_ value: Int) -> String {
        let digits = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return value < 62 ? String(digits[value]) : base62(value / 62) + String(digits[value % 62])
    }

    /// A list far longer than the nesting cap is fine: levels are given back.
    func testNestingLevelsAreGivenBack() {
        for (leaf, shown) in [("p", "_"), ("Rp", "&_"), ("C1x", "x")] {
            let mangled = "_RIC0p" + String(repeating: leaf, count: 1000) + "E"
            let expected = "::<_" + String(repeating: ", " + shown, count: 1000) + ">"
            XCTAssertEqual(SymbolDemangler.demangle(mangled), expected, leaf)
        }
    }

    func testMalformedNamesComeBackUnchanged() {
        var malformed = [
            "_R", "_RX", "_Rfoo", "_RNvC", "_RNvCs15kBYyAo9fc_7mycrate",        // no path, truncated
            "_RNvCs15kBYyAo9fc_7mycrate7exam",                                   // identifier past the end
            "_RNvC3foo99999999999999999999999bar",                               // huge length
            "_RC3foo" + "s" + String(repeating: "z", count: 40) + "_",           // trailing junk
            "_RNvCs" + String(repeating: "Z", count: 30) + "_3foo3bar",          // disambiguator overflows
            "_RB_", "_RNvB0_3foo", "_RNvB2_3foo",                                // backref to itself / forward
            "_RINvC3foo3barB_E",                                                 // backref to its own I…
            "_RMC0FG0_RL3_hEu",                                                  // lifetime not bound
            "_RIC0KbaE", "_RIC0Kcd800_E", "_RIC0Ke6_E", "_RIC0Keff_E",            // bad bool, surrogate, odd/non-UTF-8 str
            "_RMC0WmRm1_m2_E", "_RMC0WmORm1_m2_",                                // pattern types cut short
            "_RNvC3fooé3bar",                                                    // not ASCII
            "_RC3foo bar",                                                       // suffix that is not `.…`
            "_RC3foo.\u{1}",                                                     // suffix with a control byte
        ]
        // Nesting past the cap, without backrefs and through them.
        malformed.append("_RMC0" + String(repeating: "R", count: 3000) + "p")
        malformed.append("_RIC0" + String(repeating: "INvC1a1b", count: 300) + String(repeating: "pE", count: 300) + "E")
        var hidden = "_RIC3000"
        let start = hidden.utf8.count - 2
        hidden += String(repeating: "R", count: 3000) + "B" + String(start - 1, radix: 36) + "_E"
        malformed.append(hidden)
        // Every truncation of a well-formed name.
        let good = "_RNCINkXs25_NgCsbmNqQUJIY6D_4core5sliceINyB9_4IterhENuNgNoBb_4iter8iterator8Iterator9rpositionNCNgNpB9_6memchr7memrchrs_0E0Bb_"
        for end in 3..<(good.utf8.count - 1) {
            let truncated = String(good.prefix(end))
            // A few prefixes are whole names themselves (`…Bb_` reads as a path with a crate after it).
            if SymbolDemangler.demangle(truncated) != truncated { continue }
            malformed.append(truncated)
        }
        for name in malformed {
            XCTAssertEqual(SymbolDemangler.demangle(name), name, name)
        }
    }

    /// Random bytes in v0 alphabet: never a trap, always either a name or the input.
    func testRandomInputsNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.")
        for _ in 0..<20_000 {
            let length = Int.random(in: 1...40, using: &generator)
            let body = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            _ = SymbolDemangler.demangle("_R" + ["N", "I", "M", "X", "Y", "C", "B"].randomElement(using: &generator)! + body)
        }
    }

    /// The same names through LLVM's Rust demangler, which prints these alike.
    func testAgreesWithLLVMCxxfilt() throws {
        let tool = (["/usr/bin/llvm-cxxfilt", "/opt/swift/usr/bin/llvm-cxxfilt"] as [String]).first { access($0, X_OK) == 0 }
        guard let tool else { try skipUnlessCI("llvm-cxxfilt is not installed: v0 names not cross-checked") }
        let names = [
            "_RNvCs15kBYyAo9fc_7mycrate7example", "_RNvC6_123foo3bar", "_RC4f128",
            "_RNqCs4fqI2P2rA04_11utf8_identsu30____7hkackfecea1cbdathfdh9hlq6y",
            "_RNCNCNgCs6DXkGYLi8lr_2cc5spawn00B5_",
            "_RNCINkXs25_NgCsbmNqQUJIY6D_4core5sliceINyB9_4IterhENuNgNoBb_4iter8iterator8Iterator9rpositionNCNgNpB9_6memchr7memrchrs_0E0Bb_",
            "_RINbNbCskIICzLVDPPb_5alloc5alloc8box_freeDINbNiB4_5boxed5FnBoxuEp6OutputuEL_ECs1iopQbuBiw2_3std",
            "_RMC0INtC8arrayvec8ArrayVechKj7b_E", "_RIC0Kj7b_E", "_RIC0Khb_E", "_RIC0Koff00ff00ff00ff00ff_E",
            "_RIC0Ks98_E", "_RIC0Kanb_E", "_RIC0Kb0_E", "_RIC0Kb1_E", "_RIC0Kc76_E", "_RIC0Kc22_E", "_RIC0Kca_E",
            "_RMC0TTTTTTpB8_EB7_EB6_EB5_EB4_EB3_E",
            "_RNvMsr_NtCs3ssYzQotkvD_3std4pathNtB5_7PathBuf3newCs15kBYyAo9fc_7mycrate",
            "_RINvNtCs9ltgdHTiPiY_4core3ptr13drop_in_placeNtNtCsaXdKcZCc1qi_5alloc3vec3VecEB4_",
            "_RMC0FG0_RL1_hRL0_hEu", "_RMC0FUKCmEu", "_RMC0DNtC3std3AnyEL_", "_RMC0SQh", "_RMC0POPe",
            "_RMC0TmhE", "_RMC0TmE", "_RMC0TE", "_RMC0Ahj3_",
            // Malformed: both leave them as they are.
            "_RNvC", "_RB_", "_RNvB2_3foo", "_RMC0FG0_RL3_hEu", "_RIC0KbaE",
        ]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data((names.joined(separator: "\n") + "\n").utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let expected = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertGreaterThanOrEqual(expected.count, names.count)
        for (name, llvm) in zip(names, expected) {
            XCTAssertEqual(SymbolDemangler.demangle(name), llvm, name)
        }
    }
}
