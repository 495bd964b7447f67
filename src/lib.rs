//! stomphub: a STOMP-over-WebSocket message broker.
//!
//! Layout, from the wire inwards:
//! - [`stomp`] turns bytes into [`stomp::Frame`]s and back, with limits and typed errors.

pub mod stomp;
