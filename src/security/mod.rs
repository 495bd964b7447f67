//! Who may connect and what they may do: connection admission, the client
//! address behind trusted proxies, per-session rate limits, origins,
//! authentication (passwords, JWT) and per-destination access rules.
//! Each decision returns a typed error the transport turns into an ERROR frame or
//! an HTTP status.

pub mod acl;
pub mod auth;
pub mod connections;
pub mod forwarded;
pub mod jwt;
pub mod origin;
pub mod password;
pub mod proxies;
pub mod rate;

pub use acl::{AccessRules, Action};
pub use auth::{AuthError, Authenticator, Identity};
