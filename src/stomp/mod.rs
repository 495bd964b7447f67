//! STOMP 1.0–1.2 wire format: frame model, incremental decoder, encoder.

mod decode;
mod encode;
mod error;
mod escape;
mod frame;
mod limits;
mod position;
mod prepared;

pub use decode::{Decoded, Decoder};
pub use encode::{encode, encode_message, encode_to_vec, encoded_len_hint};
pub use error::DecodeError;
pub use frame::{Command, Frame, Headers, Version};
pub use limits::Limits;
pub use position::{BadPosition, Epoch, Position};
pub use prepared::PreparedMessage;
