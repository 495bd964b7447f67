//! Property tests: encode -> decode round-trips, and any chunking of a stream decodes the same.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use stomphub::stomp::{Command, Decoded, Decoder, Frame, Headers, Limits, Version, encode};

fn text(version: Version) -> BoxedStrategy<String> {
    // 1.0 cannot express CR or LF in a header; 1.1 cannot express CR.
    match version {
        Version::V1_2 => "[a-z:\\\\\r\n 你好é-]{0,12}".boxed(),
        Version::V1_1 => "[a-z:\\\\\n 你好é-]{0,12}".boxed(),
        Version::V1_0 => "[a-z:\\\\ 你好é-]{0,12}".boxed(),
    }
}

fn name(version: Version) -> BoxedStrategy<String> {
    match version {
        // Without escaping a colon would end the name.
        Version::V1_0 => "[a-z\\\\ 你-]{1,8}".boxed(),
        _ => text(version)
            .prop_filter("names are not empty", |n| !n.is_empty())
            .boxed(),
    }
}

fn frame(version: Version) -> impl Strategy<Value = Frame> {
    let command = prop::sample::select(
        Command::ALL
            .into_iter()
            // Escaping differs for CONNECT/CONNECTED; they get their own strategy below.
            .filter(|c| c.escapes_headers())
            .collect::<Vec<_>>(),
    );
    let header = (name(version), text(version))
        .prop_filter("content-length is computed", |(n, _)| n != "content-length");
    (
        command,
        prop::collection::vec(header, 0..6),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(command, headers, body)| Frame {
            command,
            headers: headers.into_iter().collect::<Headers>(),
            body: if command.allows_body() {
                Bytes::from(body)
            } else {
                Bytes::new()
            },
        })
}

fn connect_frame() -> impl Strategy<Value = Frame> {
    let plain = "[a-z0-9.,:/ -]{0,12}";
    let header = (
        "[a-z-]{1,10}".prop_filter("computed", |n| n != "content-length"),
        plain,
    );
    (
        prop::sample::select(vec![Command::Connect, Command::Connected]),
        prop::collection::vec(header, 0..6),
    )
        .prop_map(|(command, headers)| Frame {
            command,
            headers: headers.into_iter().collect(),
            body: Bytes::new(),
        })
}

fn any_version_frames() -> impl Strategy<Value = (Version, Vec<Frame>)> {
    prop::sample::select(Version::ALL.to_vec()).prop_flat_map(|version| {
        let one = prop_oneof![4 => frame(version), 1 => connect_frame()];
        (Just(version), prop::collection::vec(one, 1..6))
    })
}

fn decode_chunks(version: Version, chunks: &[&[u8]]) -> Vec<Frame> {
    let mut decoder = Decoder::new(Limits::default());
    decoder.set_version(version);
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        while let Some(item) = decoder.decode().expect("valid stream") {
            if let Decoded::Frame(frame) = item {
                out.push(frame);
            }
        }
    }
    decoder.finish().expect("stream ends between frames");
    out
}

fn encode_stream(version: Version, frames: &[Frame], heart_beats: bool) -> BytesMut {
    let mut stream = BytesMut::new();
    for frame in frames {
        if heart_beats {
            stream.extend_from_slice(b"\r\n\n");
        }
        encode(frame, version, &mut stream);
    }
    stream
}

/// The decoder reports a computed content-length header for frames that carry one.
fn without_content_length(mut frame: Frame) -> Frame {
    frame.headers.remove("content-length");
    frame
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips((version, frames) in any_version_frames()) {
        let stream = encode_stream(version, &frames, false);
        let decoded: Vec<Frame> = decode_chunks(version, &[&stream]).into_iter().map(without_content_length).collect();
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn any_chunking_decodes_like_the_whole_stream(
        (version, frames) in any_version_frames(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let stream = encode_stream(version, &frames, true);
        let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let chunks: Vec<&[u8]> = points.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
        let whole = decode_chunks(version, &[&stream]);
        prop_assert_eq!(decode_chunks(version, &chunks), whole);
    }
}
