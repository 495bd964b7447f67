//! Fuzzes a whole session: arbitrary bytes, decoded and handed frame by frame to
//! a `Session` of a real server's hub (broker, demo handlers, history, user
//! registry), with one or two sessions interleaved. Checks that nothing panics,
//! that queued bytes stay under the session's limit, that every queued frame
//! encodes to STOMP the decoder accepts, and that ending the sessions leaves no
//! subscription, directory entry or queued byte behind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use stomphub::AppBuilder;
use stomphub::config::{Config, HistoryConfig};
use stomphub::stomp::{Decoded, Decoder, Limits, Version};
use stomphub::testing::{Flow, Session, SessionError, TestHub, encode_outgoing};

const QUEUE_LIMIT: usize = 16 * 1024;

fn config() -> Config {
    let mut config = Config::default();
    config.demo.price_feed_ms = 0;
    config.stomp.user_from_login = true;
    config.limits.max_frame_size = 4096;
    config.limits.max_body_size = 2048;
    config.limits.max_header_line = 512;
    config.limits.max_headers = 16;
    config.limits.outbound_queue_bytes = QUEUE_LIMIT;
    config.limits.max_subscriptions = 8;
    config.limits.max_transactions = 2;
    config.limits.max_transaction_bytes = 4096;
    // Wall-clock rate limiting would make runs irreproducible.
    config.limits.max_frames_per_second = 0;
    config.history = vec![HistoryConfig { destination: "/topic/h/**".into(), max_messages: 4, max_age_ms: 0 }];
    config
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
    })
}

struct Peer {
    session: Session,
    decoder: Decoder,
    open: bool,
}

impl Peer {
    fn new(hub: &TestHub, config: &Config, id: u64) -> Peer {
        Peer { session: hub.open_session(id), decoder: Decoder::new(config.codec_limits()), open: true }
    }

    async fn feed(&mut self, bytes: &[u8]) {
        if !self.open {
            return;
        }
        self.decoder.feed(bytes);
        loop {
            match self.decoder.decode() {
                Ok(Some(Decoded::Frame(frame))) => {
                    if self.session.handle(frame) == Flow::Close {
                        self.open = false;
                        return;
                    }
                    if let Some(version) = self.session.version() {
                        self.decoder.set_version(version);
                    }
                    if self.session.is_waiting_for_app() {
                        self.session.wait_for_app().await;
                    }
                }
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(None) => return,
                Err(error) => {
                    self.session.fail(&SessionError::Decode(error));
                    self.open = false;
                    return;
                }
            }
        }
    }

    /// Drains the queue as the writer would and checks what it would write.
    fn drain(&self) {
        assert!(self.session.outbound().queued_bytes() <= QUEUE_LIMIT);
        let mut items = Vec::new();
        self.session.outbound().drain_into(&mut items);
        let version = self.session.version().unwrap_or(Version::V1_2);
        let unlimited = usize::MAX;
        for item in &items {
            let mut bytes = bytes::BytesMut::new();
            encode_outgoing(item, version, &mut bytes);
            let mut decoder = Decoder::new(Limits { max_frame_size: unlimited, max_headers: unlimited, max_header_line: unlimited, max_body_size: unlimited });
            decoder.set_version(version);
            decoder.feed(&bytes);
            match decoder.decode() {
                Ok(Some(Decoded::Frame(_))) => {}
                other => panic!("the server would write invalid STOMP: {other:?} from {item:?}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let config = config();
    let hub = TestHub::new(&config, AppBuilder::new()).expect("the fuzz configuration builds");
    runtime().block_on(async {
        let mut peers = vec![Peer::new(&hub, &config, 1)];
        if control & 2 != 0 {
            peers.push(Peer::new(&hub, &config, 2));
        }
        if control & 1 != 0 {
            for peer in &mut peers {
                peer.feed(b"CONNECT\naccept-version:1.0,1.1,1.2\nlogin:fuzz\n\n\0").await;
            }
        }
        let chunk_len = 1 + (control >> 2) as usize;
        for (index, chunk) in rest.chunks(chunk_len).enumerate() {
            let count = peers.len();
            let peer = &mut peers[index % count];
            peer.feed(chunk).await;
            // Let handlers started by /app sends run, as the worker tasks would.
            tokio::task::yield_now().await;
            peer.drain();
        }
        for peer in &mut peers {
            peer.session.end("fuzz input ended");
            peer.drain();
        }
    });
    assert_eq!(hub.subscriptions(), 0);
    assert_eq!(hub.listed_sessions(), 0);
    assert_eq!(hub.queued_bytes(), 0);
});
