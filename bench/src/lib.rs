//! Load generation for STOMP-over-WebSocket brokers on loopback: the
//! `stomphub-bench` scenarios (fan-out, point-to-point, connections) and the
//! `stomphub-soak` mixed-load run share these parts.
//!
//! The STOMP-over-WebSocket and SSE clients are not kept here: they are the
//! integration tests' own, mounted from tests/common with `#[path]`, so the
//! load generator and the tests drive the broker through one copy of the
//! client code. Those files use only crates this package depends on as well.
//! The tests have no STOMP-over-TCP or plain WebSocket client to share, so
//! those two live here (`stomp_tcp`, `plain`).

pub mod client;
pub mod conns;
pub mod fanout;
pub mod p2p;
pub mod plain;
pub mod procfs;
pub mod proxy;
pub mod report;
pub mod soak;
pub mod sockjs;
#[path = "../../tests/common/sse.rs"]
pub mod sse;
pub mod stats;
#[path = "../../tests/common/stomp_client.rs"]
pub mod stomp_client;
pub mod stomp_tcp;
pub mod subscribe;
pub mod subscribers;
