//! Lingering close: a connection dropped while the client is still sending
//! keeps reading, and discarding, for a moment before the socket is closed.
//!
//! Closing a socket with unread input makes the kernel answer with a reset.
//! A client still writing (a 1 MiB message the server refused after its first
//! bytes) then fails its write and tears its connection down before it has
//! read the server's last words: the STOMP ERROR and the WebSocket close code.
//! Half-closing and draining first, as nginx's `lingering_close` does, lets
//! those arrive. Only a connection with input waiting lingers; a plain close
//! costs one non-blocking read.

use crate::security::connections::Ticket;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest a closed connection keeps reading what the client still sends.
const LINGER: Duration = Duration::from_secs(2);

/// Closes `stream`, lingering when the client is still sending. The `ticket`
/// keeps the connection counted under the caps until the socket is gone.
pub fn close(stream: TcpStream, ticket: Option<Ticket>) {
    let mut probe = [0u8; 512];
    let input_waiting = matches!(stream.try_read(&mut probe), Ok(read) if read > 0);
    if !input_waiting {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut stream = stream;
        // FIN after everything written so far: the client reads it all, then EOF.
        let _ = stream.shutdown().await;
        let mut discard = [0u8; 4096];
        let _ = tokio::time::timeout(LINGER, async {
            while matches!(stream.read(&mut discard).await, Ok(read) if read > 0) {}
        })
        .await;
        drop(ticket);
    });
}
