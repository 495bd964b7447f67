//! Heart-beat negotiation (STOMP 1.1+, "Heart-beating").

use std::time::Duration;

/// The intervals a connection runs with after CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartBeat {
    /// The server sends an EOL when it has written nothing for this long.
    pub send_every: Option<Duration>,
    /// The client promised to send something at least this often.
    pub expect_every: Option<Duration>,
}

/// How many missed intervals the server tolerates before it ends a session (Spring's margin).
pub const TIMEOUT_FACTOR: u32 = 3;

impl HeartBeat {
    /// How long the client may stay silent before the session is ended.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.expect_every.map(|every| every * TIMEOUT_FACTOR)
    }
}

/// Parses a `heart-beat` header value: `cx,cy` in milliseconds.
pub fn parse(value: &str) -> Option<(u64, u64)> {
    let (x, y) = value.split_once(',')?;
    Some((x.trim().parse().ok()?, y.trim().parse().ok()?))
}

/// One direction: off when either side turns it off; otherwise the client's
/// ask wins when it is slower than the server's wish, and also when it is
/// faster, down to `floor_ms` (stompjs and Spring clients expect a 1 s ask to
/// be honoured, where the spec's plain maximum would give them the server's 10 s).
fn interval(client_ms: u64, server_ms: u64, floor_ms: u64) -> Option<Duration> {
    (client_ms != 0 && server_ms != 0)
        .then(|| Duration::from_millis(client_ms.max(server_ms.min(floor_ms))))
}

/// `client` is the CONNECT header `(cx, cy)`, `server` the configured `(sx, sy)`,
/// `floor_ms` the fastest interval the server accepts.
pub fn negotiate(client: (u64, u64), server: (u64, u64), floor_ms: u64) -> HeartBeat {
    let (cx, cy) = client;
    let (sx, sy) = server;
    HeartBeat {
        send_every: interval(cy, sx, floor_ms),
        expect_every: interval(cx, sy, floor_ms),
    }
}

/// The CONNECTED `heart-beat` value for what was negotiated: the client then
/// computes the same intervals (the larger of its ask and this answer).
pub fn header_value(heartbeat: &HeartBeat) -> String {
    let millis = |every: Option<Duration>| every.map_or(0, |d| d.as_millis());
    format!(
        "{},{}",
        millis(heartbeat.send_every),
        millis(heartbeat.expect_every)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slower_ask_wins_and_a_faster_one_down_to_the_floor() {
        let hb = negotiate((4000, 20000), (10000, 10000), 1000);
        assert_eq!(hb.send_every, Some(Duration::from_millis(20000)));
        assert_eq!(hb.expect_every, Some(Duration::from_millis(4000)));
        assert_eq!(hb.read_timeout(), Some(Duration::from_millis(12000)));
        let hb = negotiate((1000, 1000), (10000, 10000), 1000);
        assert_eq!(header_value(&hb), "1000,1000");
        let hb = negotiate((100, 200), (10000, 10000), 1000);
        assert_eq!(header_value(&hb), "1000,1000", "never below the floor");
        let hb = negotiate((100, 200), (500, 10000), 1000);
        assert_eq!(
            hb.send_every,
            Some(Duration::from_millis(500)),
            "a server that wants faster than the floor keeps its own interval"
        );
        assert_eq!(
            negotiate((0, 0), (10000, 10000), 1000),
            HeartBeat::default()
        );
        assert_eq!(negotiate((1000, 1000), (0, 0), 1000), HeartBeat::default());
        assert_eq!(header_value(&HeartBeat::default()), "0,0");
    }

    #[test]
    fn header_values_parse_or_are_rejected() {
        assert_eq!(parse("10000,10000"), Some((10000, 10000)));
        assert_eq!(parse("0, 5"), Some((0, 5)));
        assert_eq!(parse("10000"), None);
        assert_eq!(parse("a,b"), None);
        assert_eq!(parse("-1,0"), None);
    }
}
