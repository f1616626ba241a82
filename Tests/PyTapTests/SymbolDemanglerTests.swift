import PyTap
import XCTest

/// Mangled names as compilers emit them, against what `c++filt` prints (binutils 2.40:
/// C++ and Rust legacy).
final class SymbolDemanglerTests: XCTestCase {
    func testCPlusPlusNamesAreDemangled() {
        XCTAssertEqual(SymbolDemangler.demangle("_ZN3foo3barEv"), "foo::bar()")
        XCTAssertEqual(SymbolDemangler.demangle("_ZNSt6vectorIiSaIiEE9push_backERKi"),
                       "std::vector<int, std::allocator<int> >::push_back(int const&)")
        XCTAssertEqual(SymbolDemangler.demangle("_Z24hash_complex_clongdoublePK15npy_clongdoubleh"),
                       "hash_complex_clongdouble(npy_clongdouble const*, unsigned char)")
        XCTAssertEqual(SymbolDemangler.demangle("_ZN3foo3barEv.cold"), "foo::bar() [clone .cold]")
    }

    func testRustLegacyNamesLoseTheirHashAndEscapes() {
        XCTAssertEqual(SymbolDemangler.demangle("_ZN3std2rt10lang_start17h0123456789abcdefE"), "std::rt::lang_start")
        XCTAssertEqual(SymbolDemangler.demangle(
            "_ZN4core3ptr85drop_in_place$LT$std..rt..lang_start$LT$$LP$$RP$$GT$..$u7b$$u7b$closure$u7d$$u7d$$GT$17h0123456789abcdefE"),
            "core::ptr::drop_in_place<std::rt::lang_start<()>::{{closure}}>")
        XCTAssertEqual(SymbolDemangler.demangle("_ZN70_$LT$alloc..vec..Vec$LT$T$C$A$GT$$u20$as$u20$core..ops..drop..Drop$GT$4drop17h9e0c5d3b1ab2f0c1E"),
                       "<alloc::vec::Vec<T,A> as core::ops::drop::Drop>::drop")
        XCTAssertEqual(SymbolDemangler.demangle("_ZN3std2rt10lang_start17h0123456789abcdefE.llvm.1234"), "std::rt::lang_start")
    }

    func testAnythingElseIsLeftAsItIs() {
        for name in ["_PyEval_EvalFrameDefault", "PyObject_Vectorcall", "_Zgarbage", "_Z", "",
                     // Rust v0 cut short.
                     "_RNvCs1234_7mycrate",
                     // A C++ name whose last component merely looks like a Rust hash is C++.
                     "_ZN3foo17h0123456789abcdefEv"] {
            XCTAssertEqual(SymbolDemangler.demangle(name), name == "_ZN3foo17h0123456789abcdefEv" ? "foo::h0123456789abcdef()" : name, name)
        }
        XCTAssertEqual(SymbolDemangler.demangle("_ZN3foo3barEv" + String(repeating: "x", count: 5000)).hasPrefix("_ZN3foo"), true)
    }
}
