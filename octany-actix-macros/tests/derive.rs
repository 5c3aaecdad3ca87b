//! Compile-time behaviour of the derives: what compiles, and the errors
//! that point at the wrong attribute.

#[test]
fn derives() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
