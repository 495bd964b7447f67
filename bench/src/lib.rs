//! Load generation for STOMP-over-WebSocket brokers on loopback: the
//! `stomphub-bench` scenarios (fan-out, point-to-point, connections) and the
//! `stomphub-soak` mixed-load run share these parts.

pub mod client;
pub mod conns;
pub mod fanout;
pub mod p2p;
pub mod procfs;
pub mod report;
pub mod soak;
pub mod sse_client;
pub mod stats;
pub mod subscribers;
