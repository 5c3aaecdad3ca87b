//! The example app.
fn main() {}
