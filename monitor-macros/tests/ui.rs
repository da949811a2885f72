//! Compile-time behaviour: every accepted shape builds without warnings under
//! `#![deny(warnings)]`, every mistake is one spanned error.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
