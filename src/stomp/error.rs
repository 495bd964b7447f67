//! Typed decode errors: what was wrong and where (command, header, stream byte offset).

use super::frame::Command;

/// Every way a peer's byte stream can fail to be STOMP. `offset` counts bytes
/// from the start of the stream, so a log line points at the exact octet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown command {command:?} at byte {offset}")]
    UnknownCommand { command: String, offset: u64 },
    #[error("frame exceeds limits.max_frame_size of {limit} bytes (frame starts at byte {offset})")]
    FrameTooLarge { limit: usize, offset: u64 },
    #[error("line exceeds limits.max_header_line of {limit} bytes (line starts at byte {offset})")]
    LineTooLong { limit: usize, offset: u64 },
    #[error(
        "{command} frame has more than limits.max_headers = {limit} headers (at byte {offset})"
    )]
    TooManyHeaders {
        command: Command,
        limit: usize,
        offset: u64,
    },
    #[error(
        "{command} body exceeds limits.max_body_size of {limit} bytes (body starts at byte {offset})"
    )]
    BodyTooLarge {
        command: Command,
        limit: usize,
        offset: u64,
    },
    #[error("{command} header line has no ':' (line starts at byte {offset})")]
    MissingColon { command: Command, offset: u64 },
    #[error("{command} header has an empty name (line starts at byte {offset})")]
    EmptyHeaderName { command: Command, offset: u64 },
    #[error("{command} header {header:?} has undefined escape {sequence:?} at byte {offset}")]
    BadEscape {
        command: Command,
        header: String,
        sequence: String,
        offset: u64,
    },
    #[error("{command} header line is not valid UTF-8 (line starts at byte {offset})")]
    InvalidUtf8 { command: Command, offset: u64 },
    #[error(
        "{command} content-length {value:?} is not a byte count (line starts at byte {offset})"
    )]
    InvalidContentLength {
        command: Command,
        value: String,
        offset: u64,
    },
    #[error("{command} body of content-length {length} is not followed by NUL at byte {offset}")]
    MissingNul {
        command: Command,
        length: usize,
        offset: u64,
    },
    #[error("{command} frames must not have a body (body starts at byte {offset})")]
    BodyNotAllowed { command: Command, offset: u64 },
    #[error("carriage return not followed by line feed at byte {offset}")]
    BareCarriageReturn { offset: u64 },
    #[error("stream ended inside a frame (frame starts at byte {offset})")]
    Truncated { offset: u64 },
}

impl DecodeError {
    /// True for a configured size limit, as opposed to a malformed frame.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            DecodeError::FrameTooLarge { .. }
                | DecodeError::LineTooLong { .. }
                | DecodeError::TooManyHeaders { .. }
                | DecodeError::BodyTooLarge { .. }
        )
    }

    /// Stream offset the error points at.
    pub fn offset(&self) -> u64 {
        match self {
            DecodeError::UnknownCommand { offset, .. }
            | DecodeError::FrameTooLarge { offset, .. }
            | DecodeError::LineTooLong { offset, .. }
            | DecodeError::TooManyHeaders { offset, .. }
            | DecodeError::BodyTooLarge { offset, .. }
            | DecodeError::MissingColon { offset, .. }
            | DecodeError::EmptyHeaderName { offset, .. }
            | DecodeError::BadEscape { offset, .. }
            | DecodeError::InvalidUtf8 { offset, .. }
            | DecodeError::InvalidContentLength { offset, .. }
            | DecodeError::MissingNul { offset, .. }
            | DecodeError::BodyNotAllowed { offset, .. }
            | DecodeError::BareCarriageReturn { offset }
            | DecodeError::Truncated { offset } => *offset,
        }
    }
}
