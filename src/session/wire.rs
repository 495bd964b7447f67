//! Turns queued outbound items into STOMP bytes in the session's protocol version.

use crate::broker::outbound::Outgoing;
use crate::stomp::{Command, Frame, Version, encode};
use bytes::BytesMut;

/// Appends the encoding of `item` to `out`.
pub fn encode_outgoing(item: &Outgoing, version: Version, out: &mut BytesMut) {
    match item {
        Outgoing::Frame(frame) => encode(frame, version, out),
        Outgoing::HistoryGone {
            subscription,
            destination,
        } => {
            let notice = Frame::new(Command::Message)
                .header("subscription", &**subscription)
                .header("destination", &**destination)
                .header("message-id", format!("history-gone-{subscription}"))
                .header("history-gone", "true");
            encode(&notice, version, out);
        }
        Outgoing::Delivery {
            message,
            subscription,
            needs_ack,
            ..
        } => {
            if *needs_ack && version == Version::V1_2 {
                // 1.2 clients ACK by the `ack` header; the message id is unique per message.
                let message_id = message.headers().get("message-id").unwrap_or_default();
                let own = [("subscription", &**subscription), ("ack", message_id)];
                message.encode_for(version, &own, out);
            } else {
                message.encode_for(version, &[("subscription", subscription)], out);
            }
        }
    }
}
