//! Decoder limits: the most a peer can make the decoder buffer or allocate.

/// Every limit is in bytes except `max_headers`. Defaults follow Spring's
/// STOMP defaults so that a migrating application sees the same ceilings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole frame: command line, headers, body and the terminating NUL.
    pub max_frame_size: usize,
    /// Header entries per frame.
    pub max_headers: usize,
    /// One header line (name, colon and value, before unescaping), also the command line.
    pub max_header_line: usize,
    /// The body alone.
    pub max_body_size: usize,
}

impl Limits {
    pub const DEFAULT_FRAME_SIZE: usize = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: Self::DEFAULT_FRAME_SIZE,
            max_headers: 100,
            max_header_line: 8 * 1024,
            max_body_size: Self::DEFAULT_FRAME_SIZE,
        }
    }
}
