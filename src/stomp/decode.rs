//! Incremental STOMP decoder: feed byte chunks of any size, take out frames and heart-beats.
//!
//! Each byte is scanned once: the decoder remembers where its search for the next
//! line end or NUL stopped, so a frame that arrives one byte at a time costs the
//! same as one that arrives whole. nom parses each complete line and the
//! content-length body. Limits are checked while data is still incomplete, so
//! the buffer never holds more than the limit plus the last chunk.

use super::error::DecodeError;
use super::escape::unescape;
use super::frame::{Command, Frame, Headers, Version};
use super::limits::Limits;
use bytes::{Bytes, BytesMut};
use nom::bytes::complete::{tag, take_till, take_while1};
use nom::combinator::{all_consuming, rest};
use nom::sequence::{separated_pair, terminated};
use nom::{IResult, Parser};

/// One item of a STOMP byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Frame(Frame),
    /// An EOL between frames: the peer's heart-beat.
    HeartBeat,
}

#[derive(Debug)]
enum State {
    /// Between frames, where EOLs are heart-beats.
    Idle,
    Headers {
        command: Command,
        headers: Headers,
        line_start: usize,
    },
    Body {
        command: Command,
        headers: Headers,
        body_start: usize,
        content_length: Option<usize>,
    },
}

/// Decoder for one direction of one connection.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    limits: Limits,
    version: Version,
    state: State,
    /// Stream offset of `buf[0]`, which is always the start of the current frame.
    consumed: u64,
    /// Where the search for the next delimiter resumes.
    scan_from: usize,
    failed: Option<DecodeError>,
}

/// `UNSUBSCRIBE` and `DISCONNECT` are the longest commands.
const LONGEST_COMMAND: usize = 11;

type LineResult<'a, O> = IResult<&'a [u8], O, nom::error::Error<&'a [u8]>>;

fn command_line(line: &[u8]) -> LineResult<'_, &[u8]> {
    all_consuming(take_while1(|b: u8| b.is_ascii_uppercase())).parse(line)
}

fn header_line(line: &[u8]) -> LineResult<'_, (&[u8], &[u8])> {
    separated_pair(take_till(|b| b == b':'), tag(&b":"[..]), rest).parse(line)
}

fn body_with_length(input: &[u8], length: usize) -> LineResult<'_, &[u8]> {
    terminated(
        nom::bytes::streaming::take(length),
        nom::bytes::streaming::tag(&b"\0"[..]),
    )
    .parse(input)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn printable_command(line: &[u8]) -> String {
    const SHOWN: usize = 32;
    let shown = &line[..line.len().min(SHOWN)];
    let mut text = String::from_utf8_lossy(shown).into_owned();
    if line.len() > SHOWN {
        text.push('…');
    }
    text
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            buf: BytesMut::new(),
            limits,
            version: Version::V1_2,
            state: State::Idle,
            consumed: 0,
            scan_from: 0,
            failed: None,
        }
    }

    /// Escaping rules for the frames that follow (set once CONNECT is negotiated).
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends a chunk. Call [`Decoder::decode`] until it returns `Ok(None)`
    /// after each chunk; that is what keeps the buffer within the limits.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes held for a frame not yet complete.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// The next frame or heart-beat, `Ok(None)` when more input is needed.
    /// After an error the stream is unusable and the same error is returned again.
    pub fn decode(&mut self) -> Result<Option<Decoded>, DecodeError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.step();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    /// Call when the stream has ended: an unfinished frame is an error.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Truncated {
                offset: self.consumed,
            })
        }
    }

    fn at(&self, position: usize) -> u64 {
        self.consumed + position as u64
    }

    fn step(&mut self) -> Result<Option<Decoded>, DecodeError> {
        loop {
            let progressed = match &self.state {
                State::Idle => return self.idle(),
                State::Headers { .. } => self.header_line()?,
                State::Body { .. } => return self.body(),
            };
            if !progressed {
                return Ok(None);
            }
        }
    }

    fn advance(&mut self, count: usize) -> BytesMut {
        self.consumed += count as u64;
        self.scan_from = 0;
        self.buf.split_to(count)
    }

    /// Finds the end of the line starting at `line_start`, enforcing the line
    /// and frame limits on a line that is still incomplete.
    fn find_line_end(&mut self, line_start: usize) -> Result<Option<usize>, DecodeError> {
        let from = self.scan_from.max(line_start);
        match memchr::memchr(b'\n', &self.buf[from..]) {
            Some(found) => {
                let end = from + found;
                // The line length excludes the EOL itself (LF or CRLF).
                if strip_cr(&self.buf[line_start..end]).len() > self.limits.max_header_line {
                    return Err(self.line_too_long(line_start));
                }
                if end + 1 > self.limits.max_frame_size {
                    return Err(self.frame_too_large());
                }
                self.scan_from = end + 1;
                Ok(Some(end))
            }
            None => {
                self.scan_from = self.buf.len();
                if self.buf.len() - line_start > self.limits.max_header_line + 1 {
                    return Err(self.line_too_long(line_start));
                }
                if self.buf.len() > self.limits.max_frame_size {
                    return Err(self.frame_too_large());
                }
                Ok(None)
            }
        }
    }

    fn line_too_long(&self, line_start: usize) -> DecodeError {
        DecodeError::LineTooLong {
            limit: self.limits.max_header_line,
            offset: self.at(line_start),
        }
    }

    fn frame_too_large(&self) -> DecodeError {
        DecodeError::FrameTooLarge {
            limit: self.limits.max_frame_size,
            offset: self.consumed,
        }
    }

    /// Refuses a command line as soon as it cannot become a command (a byte that is
    /// not an upper-case letter, or more letters than the longest command), instead
    /// of buffering garbage up to the line limit.
    fn check_command_prefix(&self) -> Result<(), DecodeError> {
        let window = &self.buf[..self.buf.len().min(LONGEST_COMMAND + 2)];
        let line = match memchr::memchr(b'\n', window) {
            Some(end) => &window[..end],
            None => window,
        };
        let letters = strip_cr(line);
        if letters.len() > LONGEST_COMMAND || !letters.iter().all(u8::is_ascii_uppercase) {
            return Err(DecodeError::UnknownCommand {
                command: printable_command(letters),
                offset: self.consumed,
            });
        }
        Ok(())
    }

    fn idle(&mut self) -> Result<Option<Decoded>, DecodeError> {
        match self.buf.first() {
            None => return Ok(None),
            Some(b'\n') => {
                self.advance(1);
                return Ok(Some(Decoded::HeartBeat));
            }
            Some(b'\r') => {
                return match self.buf.get(1) {
                    None => Ok(None),
                    Some(b'\n') => {
                        self.advance(2);
                        Ok(Some(Decoded::HeartBeat))
                    }
                    Some(_) => Err(DecodeError::BareCarriageReturn {
                        offset: self.consumed,
                    }),
                };
            }
            Some(_) => {}
        }
        self.check_command_prefix()?;
        let Some(end) = self.find_line_end(0)? else {
            return Ok(None);
        };
        let line = strip_cr(&self.buf[..end]);
        let command = command_line(line)
            .ok()
            .and_then(|(_, name)| Command::from_bytes(name))
            .ok_or_else(|| DecodeError::UnknownCommand {
                command: printable_command(line),
                offset: self.consumed,
            })?;
        self.state = State::Headers {
            command,
            headers: Headers::new(),
            line_start: end + 1,
        };
        self.step()
    }

    /// Consumes one complete header line (or the blank line ending the headers).
    /// Returns false when the line is not complete yet.
    fn header_line(&mut self) -> Result<bool, DecodeError> {
        let State::Headers { line_start, .. } = self.state else {
            return Ok(false);
        };
        let Some(end) = self.find_line_end(line_start)? else {
            return Ok(false);
        };
        let State::Headers {
            command,
            headers,
            line_start,
        } = &mut self.state
        else {
            return Ok(false);
        };
        let command = *command;
        let offset = self.consumed + *line_start as u64;
        let line = strip_cr(&self.buf[*line_start..end]);
        if line.is_empty() {
            let headers = std::mem::take(headers);
            return self.start_body(command, headers, end + 1).map(|()| true);
        }
        if headers.len() >= self.limits.max_headers {
            return Err(DecodeError::TooManyHeaders {
                command,
                limit: self.limits.max_headers,
                offset,
            });
        }
        let (_, (raw_name, raw_value)) =
            header_line(line).map_err(|_| DecodeError::MissingColon { command, offset })?;
        if raw_name.is_empty() {
            return Err(DecodeError::EmptyHeaderName { command, offset });
        }
        let utf8 = |raw| {
            std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8 { command, offset })
        };
        let (raw_name, raw_value) = (utf8(raw_name)?, utf8(raw_value)?);
        let escaped = command.escapes_headers();
        let name =
            unescape(raw_name, self.version, escaped).map_err(|bad| DecodeError::BadEscape {
                command,
                header: raw_name.to_owned(),
                sequence: bad.sequence,
                offset: offset + bad.position as u64,
            })?;
        let value_offset = offset + raw_name.len() as u64 + 1;
        let value =
            unescape(raw_value, self.version, escaped).map_err(|bad| DecodeError::BadEscape {
                command,
                header: name.clone(),
                sequence: bad.sequence,
                offset: value_offset + bad.position as u64,
            })?;
        headers.push(name, value);
        *line_start = end + 1;
        Ok(true)
    }

    fn start_body(
        &mut self,
        command: Command,
        headers: Headers,
        body_start: usize,
    ) -> Result<(), DecodeError> {
        let content_length = match headers.get("content-length") {
            None => None,
            Some(text) => {
                Some(
                    text.parse::<usize>()
                        .map_err(|_| DecodeError::InvalidContentLength {
                            command,
                            value: text.to_owned(),
                            offset: self.at(body_start),
                        })?,
                )
            }
        };
        if let Some(length) = content_length {
            if length > self.limits.max_body_size {
                return Err(DecodeError::BodyTooLarge {
                    command,
                    limit: self.limits.max_body_size,
                    offset: self.at(body_start),
                });
            }
            if body_start.saturating_add(length).saturating_add(1) > self.limits.max_frame_size {
                return Err(self.frame_too_large());
            }
        }
        self.scan_from = body_start;
        self.state = State::Body {
            command,
            headers,
            body_start,
            content_length,
        };
        Ok(())
    }

    fn body(&mut self) -> Result<Option<Decoded>, DecodeError> {
        let State::Body {
            command,
            body_start,
            content_length,
            ..
        } = self.state
        else {
            return Ok(None);
        };
        let body_len = match content_length {
            Some(length) => match body_with_length(&self.buf[body_start..], length) {
                Ok(_) => length,
                Err(nom::Err::Incomplete(_)) => return Ok(None),
                Err(_) => {
                    return Err(DecodeError::MissingNul {
                        command,
                        length,
                        offset: self.at(body_start + length),
                    });
                }
            },
            None => {
                let from = self.scan_from.max(body_start);
                match memchr::memchr(0, &self.buf[from..]) {
                    Some(found) => from + found - body_start,
                    None => {
                        self.scan_from = self.buf.len();
                        if self.buf.len() - body_start > self.limits.max_body_size {
                            return Err(DecodeError::BodyTooLarge {
                                command,
                                limit: self.limits.max_body_size,
                                offset: self.at(body_start),
                            });
                        }
                        if self.buf.len() > self.limits.max_frame_size {
                            return Err(self.frame_too_large());
                        }
                        return Ok(None);
                    }
                }
            }
        };
        if body_len > self.limits.max_body_size {
            return Err(DecodeError::BodyTooLarge {
                command,
                limit: self.limits.max_body_size,
                offset: self.at(body_start),
            });
        }
        if body_start + body_len + 1 > self.limits.max_frame_size {
            return Err(self.frame_too_large());
        }
        if body_len > 0 && !command.allows_body() {
            return Err(DecodeError::BodyNotAllowed {
                command,
                offset: self.at(body_start),
            });
        }
        let State::Body { headers, .. } = std::mem::replace(&mut self.state, State::Idle) else {
            return Ok(None);
        };
        let frame_bytes: Bytes = self.advance(body_start + body_len + 1).freeze();
        let body = frame_bytes.slice(body_start..body_start + body_len);
        Ok(Some(Decoded::Frame(Frame {
            command,
            headers,
            body,
        })))
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
