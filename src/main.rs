//! The `stomphub` binary.

fn main() {
    println!("stomphub {}", env!("CARGO_PKG_VERSION"));
    println!("STOMP codec only so far; the broker arrives with the WebSocket endpoint.");
}
