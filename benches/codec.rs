//! Decode and encode throughput (MB/s and frames/s) for 128 B and 16 KiB bodies.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use stomphub::stomp::{
    Command, Decoded, Decoder, Frame, Headers, Limits, PreparedMessage, Version, encode,
};

const FRAMES_PER_ITER: usize = 64;

fn send_frame(body_len: usize) -> Frame {
    Frame::new(Command::Send)
        .header("destination", "/topic/game_chat")
        .header("content-type", "application/json")
        .body(Bytes::from(vec![b'x'; body_len]))
}

fn stream_of(frame: &Frame) -> Bytes {
    let mut out = BytesMut::new();
    for _ in 0..FRAMES_PER_ITER {
        encode(frame, Version::V1_2, &mut out);
    }
    out.freeze()
}

fn codec(c: &mut Criterion) {
    for body_len in [128usize, 16 * 1024] {
        let frame = send_frame(body_len);
        let stream = stream_of(&frame);

        let mut group = c.benchmark_group(format!("body_{body_len}B"));
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_function("decode_bytes", |b| b.iter(|| decode(black_box(&stream))));
        group.bench_function("encode_bytes", |b| {
            b.iter(|| encode_many(black_box(&frame)))
        });
        group.throughput(Throughput::Elements(FRAMES_PER_ITER as u64));
        group.bench_function("decode_frames", |b| b.iter(|| decode(black_box(&stream))));
        group.bench_function("encode_frames", |b| {
            b.iter(|| encode_many(black_box(&frame)))
        });

        let headers: Headers = [("destination", "/topic/game_chat"), ("message-id", "1")]
            .into_iter()
            .collect();
        let prepared = PreparedMessage::new(headers, frame.body.clone());
        group.bench_function("prepared_message_deliveries", |b| {
            b.iter(|| {
                let mut out = BytesMut::new();
                for _ in 0..FRAMES_PER_ITER {
                    prepared.encode_for(Version::V1_2, &[("subscription", "sub-0")], &mut out);
                }
                out
            })
        });
        group.finish();
    }
}

fn decode(stream: &Bytes) -> usize {
    let mut decoder = Decoder::new(Limits::default());
    decoder.feed(stream);
    let mut count = 0;
    while let Ok(Some(item)) = decoder.decode() {
        if let Decoded::Frame(frame) = item {
            count += frame.body.len();
        }
    }
    count
}

fn encode_many(frame: &Frame) -> BytesMut {
    let mut out = BytesMut::new();
    for _ in 0..FRAMES_PER_ITER {
        encode(frame, Version::V1_2, &mut out);
    }
    out
}

criterion_group!(benches, codec);
criterion_main!(benches);
