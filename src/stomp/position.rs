//! A place in a destination's history as clients hold it: the `seq` header of
//! a MESSAGE, a SUBSCRIBE's `since`, and each part of an SSE event id.
//!
//! Written `<epoch>-<n>` (`18c4f2a9e01-12`): `n` numbers the destination's
//! messages from 1, and the epoch names that numbering. A history store that
//! starts empty (a broker restarted without a cluster, a Redis that lost its
//! data) starts a new epoch, so a position from before it can never be
//! mistaken for one after it. Clients treat the text as opaque.

use std::fmt;
use std::str::FromStr;

/// Which numbering a position belongs to; never 0 once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Epoch(u64);

impl Epoch {
    /// No numbering known: a destination without messages yet, or a position
    /// given as a bare number.
    pub const NONE: Epoch = Epoch(0);

    /// A fresh epoch: the time in microseconds, so epochs of one machine
    /// differ and grow, with `distinct`'s low bits beside it (a counter, or
    /// randomness for nodes started together).
    pub fn fresh(distinct: u64) -> Epoch {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or_default();
        Epoch((micros << 16 | (distinct & 0xffff)).max(1))
    }

    pub fn is_known(self) -> bool {
        self != Epoch::NONE
    }

    /// Parses the hexadecimal form an epoch is written in.
    pub fn from_hex(text: &str) -> Option<Epoch> {
        u64::from_str_radix(text, 16).ok().map(Epoch)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub epoch: Epoch,
    pub seq: u64,
}

impl Position {
    pub fn new(epoch: Epoch, seq: u64) -> Self {
        Position { epoch, seq }
    }

    /// Before the first message of any numbering: replay everything kept.
    pub fn is_start(self) -> bool {
        self.seq == 0 && !self.epoch.is_known()
    }
}

impl fmt::Display for Position {
    /// Without an epoch only the number: `0` before any message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch.is_known() {
            write!(f, "{}-{}", self.epoch, self.seq)
        } else {
            write!(f, "{}", self.seq)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a history position (a `seq` value such as 18c4f2a9e01-12, or 0)")]
pub struct BadPosition(pub String);

impl FromStr for Position {
    type Err = BadPosition;

    /// `<epoch>-<n>`, or a bare number (no epoch: only 0, the start, can be
    /// honoured; any other is answered with history-gone).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadPosition(text.to_owned());
        match text.split_once('-') {
            Some((epoch, seq)) => Ok(Position {
                epoch: Epoch::from_hex(epoch).ok_or_else(bad)?,
                seq: seq.parse().map_err(|_| bad())?,
            }),
            None => Ok(Position {
                epoch: Epoch::NONE,
                seq: text.parse().map_err(|_| bad())?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_bare_numbers_have_no_epoch() {
        let position = Position::new(Epoch::fresh(7), 12);
        assert!(position.epoch.is_known());
        assert_eq!(position.to_string().parse::<Position>(), Ok(position));
        assert_eq!("5".parse(), Ok(Position::new(Epoch::NONE, 5)));
        assert!("0".parse::<Position>().unwrap().is_start());
        assert_eq!(Position::default().to_string(), "0");
        for bad in ["", "x", "-1", "zz-1", "1-", "1-x", "1-2-3"] {
            assert!(bad.parse::<Position>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fresh_epochs_are_never_none() {
        assert!(Epoch::fresh(0).is_known());
        assert_ne!(Epoch::fresh(1), Epoch::fresh(2));
    }
}
