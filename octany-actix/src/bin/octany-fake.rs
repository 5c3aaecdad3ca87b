//! The fake Octany, standalone (built in the next step).
fn main() {}
