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

fn interval(sender_can: u64, receiver_wants: u64) -> Option<Duration> {
    (sender_can != 0 && receiver_wants != 0)
        .then(|| Duration::from_millis(sender_can.max(receiver_wants)))
}

/// `client` is the CONNECT header `(cx, cy)`, `server` the configured `(sx, sy)`.
pub fn negotiate(client: (u64, u64), server: (u64, u64)) -> HeartBeat {
    let (cx, cy) = client;
    let (sx, sy) = server;
    HeartBeat {
        send_every: interval(sx, cy),
        expect_every: interval(cx, sy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_direction_uses_the_larger_interval_or_none() {
        let hb = negotiate((4000, 20000), (10000, 10000));
        assert_eq!(hb.send_every, Some(Duration::from_millis(20000)));
        assert_eq!(hb.expect_every, Some(Duration::from_millis(10000)));
        assert_eq!(hb.read_timeout(), Some(Duration::from_millis(30000)));
        assert_eq!(negotiate((0, 0), (10000, 10000)), HeartBeat::default());
        assert_eq!(negotiate((1000, 1000), (0, 0)), HeartBeat::default());
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
