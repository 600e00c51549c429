//! chatd: the WebSocket daemon (being built).

fn main() {}
