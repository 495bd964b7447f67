//! Decoder cases from the STOMP 1.2 specification, plus every limit and error.

use super::*;

fn decode_all(input: &[u8], limits: Limits, version: Version) -> Result<Vec<Decoded>, DecodeError> {
    let mut decoder = Decoder::new(limits);
    decoder.set_version(version);
    decoder.feed(input);
    let mut items = Vec::new();
    while let Some(item) = decoder.decode()? {
        items.push(item);
    }
    decoder.finish()?;
    Ok(items)
}

fn frames(input: &[u8]) -> Vec<Frame> {
    decode_all(input, Limits::default(), Version::V1_2)
        .unwrap()
        .into_iter()
        .filter_map(|item| match item {
            Decoded::Frame(frame) => Some(frame),
            Decoded::HeartBeat => None,
        })
        .collect()
}

fn one(input: &[u8]) -> Frame {
    let mut all = frames(input);
    assert_eq!(all.len(), 1, "expected one frame");
    all.remove(0)
}

fn error(input: &[u8]) -> DecodeError {
    error_with(input, Limits::default(), Version::V1_2)
}

fn error_with(input: &[u8], limits: Limits, version: Version) -> DecodeError {
    decode_all(input, limits, version).unwrap_err()
}

#[test]
fn spec_connect_example() {
    let frame = one(b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\0");
    assert_eq!(frame.command, Command::Connect);
    assert_eq!(frame.get("accept-version"), Some("1.2"));
    assert_eq!(frame.get("host"), Some("stomp.github.org"));
    assert!(frame.body.is_empty());
}

#[test]
fn spec_send_example_keeps_the_body_up_to_the_nul() {
    let frame = one(b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\0");
    assert_eq!(frame.command, Command::Send);
    assert_eq!(frame.get("destination"), Some("/queue/a"));
    assert_eq!(frame.body.as_ref(), b"hello queue a\n");
}

#[test]
fn spec_repeated_header_first_entry_wins() {
    let frame = one(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0");
    assert_eq!(frame.get("foo"), Some("World"));
    assert_eq!(frame.headers.len(), 2);
}

#[test]
fn crlf_and_lf_line_ends_give_the_same_frame() {
    let lf = one(b"SEND\ndestination:/a\nx:1\n\nbody\0");
    let crlf = one(b"SEND\r\ndestination:/a\r\nx:1\r\n\r\nbody\0");
    assert_eq!(lf, crlf);
}

#[test]
fn header_whitespace_is_not_trimmed() {
    let frame = one(b"SEND\ndestination: /a \n\n\0");
    assert_eq!(frame.get("destination"), Some(" /a "));
}

#[test]
fn colons_after_the_first_belong_to_the_value() {
    let frame = one(b"SEND\nurl:http://x\n\n\0");
    assert_eq!(frame.get("url"), Some("http://x"));
}

#[test]
fn heart_beat_eols_between_frames_are_reported_not_framed() {
    let items = decode_all(
        b"\n\r\nSEND\ndestination:/a\n\nx\0\n\nSEND\ndestination:/b\n\n\0\r\n",
        Limits::default(),
        Version::V1_2,
    )
    .unwrap();
    let kinds: Vec<&str> = items
        .iter()
        .map(|item| match item {
            Decoded::HeartBeat => "hb",
            Decoded::Frame(_) => "frame",
        })
        .collect();
    assert_eq!(kinds, ["hb", "hb", "frame", "hb", "hb", "frame", "hb"]);
}

#[test]
fn content_length_body_may_contain_nul_octets() {
    let frame = one(b"SEND\ndestination:/a\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(frame.body.as_ref(), b"a\0b\0c");
}

#[test]
fn without_content_length_the_body_ends_at_the_first_nul() {
    let all = frames(b"SEND\ndestination:/a\n\nab\0SEND\ndestination:/b\n\ncd\0");
    assert_eq!(all[0].body.as_ref(), b"ab");
    assert_eq!(all[1].body.as_ref(), b"cd");
}

#[test]
fn several_frames_in_one_chunk_and_one_frame_over_many_chunks() {
    let stream =
        b"SEND\ndestination:/a\ncontent-length:3\n\nx\0y\0\nSUBSCRIBE\nid:0\ndestination:/b\n\n\0";
    let whole = frames(stream);
    assert_eq!(whole.len(), 2);
    let mut decoder = Decoder::new(Limits::default());
    let mut split = Vec::new();
    for byte in stream {
        decoder.feed(std::slice::from_ref(byte));
        while let Some(item) = decoder.decode().unwrap() {
            if let Decoded::Frame(frame) = item {
                split.push(frame);
            }
        }
    }
    assert_eq!(split, whole);
}

#[test]
fn stomp_1_2_header_escapes_are_undone_except_in_connect() {
    let frame = one(b"MESSAGE\nkey\\c1:a\\r\\nb\\\\c\\cd\n\n\0");
    assert_eq!(frame.get("key:1"), Some("a\r\nb\\c:d"));
    let connect = one(b"CONNECT\nlogin:a\\cb\n\n\0");
    assert_eq!(connect.get("login"), Some("a\\cb"));
    let stomp = one(b"STOMP\nlogin:a\\cb\n\n\0");
    assert_eq!(
        stomp.get("login"),
        Some("a:b"),
        "only CONNECT and CONNECTED are exempt"
    );
}

#[test]
fn undefined_escape_is_an_error_naming_the_header_and_offset() {
    let err = error(b"SEND\ndestination:/a\\tb\n\n\0");
    assert_eq!(
        err,
        DecodeError::BadEscape {
            command: Command::Send,
            header: "destination".into(),
            sequence: "\\t".into(),
            offset: 19,
        }
    );
    assert!(err.to_string().contains("destination"));
}

#[test]
fn stomp_1_1_rejects_the_carriage_return_escape_and_1_0_escapes_nothing() {
    let input = b"SEND\ndestination:/a\\rb\n\n\0";
    assert!(matches!(
        error_with(input, Limits::default(), Version::V1_1),
        DecodeError::BadEscape { .. }
    ));
    let frames = decode_all(input, Limits::default(), Version::V1_0).unwrap();
    let Decoded::Frame(frame) = &frames[0] else {
        panic!("expected a frame")
    };
    assert_eq!(frame.get("destination"), Some("/a\\rb"));
}

#[test]
fn unknown_lowercase_and_nul_commands_are_rejected_with_their_name() {
    assert_eq!(
        error(b"PUBLISH\n\n\0"),
        DecodeError::UnknownCommand {
            command: "PUBLISH".into(),
            offset: 0
        }
    );
    assert!(matches!(
        error(b"send\n\n\0"),
        DecodeError::UnknownCommand { .. }
    ));
    assert!(matches!(
        error(b"SE\0ND\n\n\0"),
        DecodeError::UnknownCommand { .. }
    ));
}

#[test]
fn error_offsets_count_from_the_start_of_the_stream() {
    let err = error(b"SEND\ndestination:/a\n\n\0\nBOGUS\n\n\0");
    assert_eq!(
        err,
        DecodeError::UnknownCommand {
            command: "BOGUS".into(),
            offset: 23
        }
    );
}

#[test]
fn content_length_not_followed_by_nul_is_an_error() {
    assert_eq!(
        error(b"SEND\ndestination:/a\ncontent-length:2\n\nabc\0"),
        DecodeError::MissingNul {
            command: Command::Send,
            length: 2,
            offset: 40
        }
    );
}

#[test]
fn a_stream_ending_inside_a_frame_is_truncated() {
    assert_eq!(
        error(b"\nSEND\ndestination:/a\n\nno nul"),
        DecodeError::Truncated { offset: 1 }
    );
}

#[test]
fn malformed_headers_are_errors() {
    assert!(matches!(
        error(b"SEND\nnocolon\n\n\0"),
        DecodeError::MissingColon { offset: 5, .. }
    ));
    assert!(matches!(
        error(b"SEND\n:v\n\n\0"),
        DecodeError::EmptyHeaderName { .. }
    ));
    assert!(matches!(
        error(b"SEND\nk:\xff\xfe\n\n\0"),
        DecodeError::InvalidUtf8 { .. }
    ));
    assert!(matches!(
        error(b"SEND\ncontent-length:-1\n\n\0"),
        DecodeError::InvalidContentLength { .. }
    ));
    assert!(matches!(
        error(b"\rX"),
        DecodeError::BareCarriageReturn { offset: 0 }
    ));
}

#[test]
fn only_send_message_and_error_may_have_a_body() {
    assert!(matches!(
        error(b"SUBSCRIBE\nid:1\ndestination:/a\n\nbody\0"),
        DecodeError::BodyNotAllowed {
            command: Command::Subscribe,
            ..
        }
    ));
    assert_eq!(
        one(b"ERROR\nmessage:x\n\ndetails\0").body.as_ref(),
        b"details"
    );
}

fn small_limits() -> Limits {
    Limits {
        max_frame_size: 256,
        max_headers: 4,
        max_header_line: 32,
        max_body_size: 64,
    }
}

#[test]
fn every_limit_is_enforced_and_named() {
    let limits = small_limits();
    let long_line = format!("SEND\nk:{}\n\n\0", "v".repeat(40));
    let err = error_with(long_line.as_bytes(), limits, Version::V1_2);
    assert_eq!(
        err,
        DecodeError::LineTooLong {
            limit: 32,
            offset: 5
        }
    );
    assert!(err.to_string().contains("max_header_line"));

    let many = "SEND\na:1\nb:2\nc:3\nd:4\ne:5\n\n\0";
    let err = error_with(many.as_bytes(), limits, Version::V1_2);
    assert!(matches!(err, DecodeError::TooManyHeaders { limit: 4, .. }));
    assert!(err.to_string().contains("max_headers"));

    let declared = "SEND\ncontent-length:65\n\n";
    let err = error_with(declared.as_bytes(), limits, Version::V1_2);
    assert!(
        matches!(err, DecodeError::BodyTooLarge { limit: 64, .. }),
        "rejected before the body arrives"
    );

    let unterminated = format!("SEND\n\n{}", "x".repeat(65));
    let err = error_with(unterminated.as_bytes(), limits, Version::V1_2);
    assert!(err.to_string().contains("max_body_size"));

    let roomy_body = Limits {
        max_body_size: 1024,
        ..limits
    };
    let big = format!("SEND\n\n{}\0", "x".repeat(300));
    let err = error_with(big.as_bytes(), roomy_body, Version::V1_2);
    assert!(matches!(
        err,
        DecodeError::FrameTooLarge {
            limit: 256,
            offset: 0
        }
    ));
    assert!(err.to_string().contains("max_frame_size"));
}

#[test]
fn an_endless_frame_fed_byte_by_byte_never_buffers_past_the_limit() {
    let limits = Limits {
        max_body_size: 10_000,
        ..small_limits()
    };
    let mut decoder = Decoder::new(limits);
    decoder.feed(b"SEND\n\n");
    let mut result = decoder.decode();
    while let Ok(None) = result {
        assert!(decoder.buffered_len() <= limits.max_frame_size + 1);
        decoder.feed(b"x");
        result = decoder.decode();
    }
    assert!(matches!(result, Err(DecodeError::FrameTooLarge { .. })));
}

#[test]
fn an_endless_header_line_fails_at_the_line_limit() {
    let limits = small_limits();
    let mut decoder = Decoder::new(limits);
    decoder.feed(b"SEND\n");
    let mut result = decoder.decode();
    while let Ok(None) = result {
        assert!(decoder.buffered_len() <= 5 + limits.max_header_line + 2);
        decoder.feed(b"h");
        result = decoder.decode();
    }
    assert!(matches!(result, Err(DecodeError::LineTooLong { .. })));
}

#[test]
fn after_an_error_the_decoder_keeps_reporting_it() {
    let mut decoder = Decoder::new(Limits::default());
    decoder.feed(b"NOPE\n\n\0SEND\n\n\0");
    let first = decoder.decode().unwrap_err();
    assert_eq!(decoder.decode().unwrap_err(), first);
}

#[test]
fn a_body_slice_shares_the_received_bytes() {
    let frame = one(b"SEND\ncontent-length:3\n\nabc\0");
    assert_eq!(frame.body, bytes::Bytes::from_static(b"abc"));
}

#[test]
fn garbage_is_refused_at_once_not_at_the_line_limit() {
    let mut decoder = Decoder::new(Limits::default());
    decoder.feed(b"\x00\x01garbage");
    assert!(matches!(
        decoder.decode(),
        Err(DecodeError::UnknownCommand { offset: 0, .. })
    ));
    let mut decoder = Decoder::new(Limits::default());
    decoder.feed(b"SUBSCRIBEXYZ");
    assert!(
        matches!(decoder.decode(), Err(DecodeError::UnknownCommand { .. })),
        "longer than any command"
    );
    let mut decoder = Decoder::new(Limits::default());
    decoder.feed(b"UNSUBSCRIBE\r");
    assert_eq!(
        decoder.decode(),
        Ok(None),
        "a command waiting for its LF is fine"
    );
}
