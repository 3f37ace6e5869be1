//! ndpickle command line.
fn main() {}
