//! What a user sees when `#[netns_test]` is used wrongly: errors at compile time,
//! pointing at the mistake.

#[test]
fn compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
