//! Fuzzes the decoder with arbitrary bytes cut into arbitrary chunks, checking
//! that it never panics, never buffers past its limits, and that whatever it
//! accepts re-encodes to something it accepts again. The same bytes also go to the
//! decoder of cross-node (cluster) messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stomphub::stomp::{Decoded, Decoder, Limits, Version, encode_to_vec};

const LIMITS: Limits = Limits { max_frame_size: 4096, max_headers: 16, max_header_line: 512, max_body_size: 2048 };

fuzz_target!(|data: &[u8]| {
    // Cross-node messages arrive from Redis, where anyone with access may publish:
    // their decoder must refuse, never panic.
    let _ = stomphub::testing::decode_cluster_message(data);
    let Some((&control, rest)) = data.split_first() else { return };
    let version = Version::ALL[(control % 3) as usize];
    let chunk_len = 1 + (control >> 2) as usize;
    let mut decoder = Decoder::new(LIMITS);
    decoder.set_version(version);
    let mut accepted = Vec::new();
    for chunk in rest.chunks(chunk_len) {
        decoder.feed(chunk);
        loop {
            match decoder.decode() {
                Ok(Some(Decoded::Frame(frame))) => accepted.push(frame),
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(decoder.buffered_len() <= LIMITS.max_frame_size + chunk_len);
    }
    for frame in accepted {

        let bytes = encode_to_vec(&frame, version);
        let unlimited = usize::MAX;
        let mut again = Decoder::new(Limits { max_frame_size: unlimited, max_headers: unlimited, max_header_line: unlimited, max_body_size: unlimited });
        again.set_version(version);
        again.feed(&bytes);
        match again.decode() {
            Ok(Some(Decoded::Frame(_))) => {}
            other => panic!("re-encoded {:?} frame did not decode: {other:?}", frame.command),
        }
    }
});
