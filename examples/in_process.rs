//! Run with: cargo run -p chatcore-examples --example in_process

fn main() {}
