//! A token bucket limiting how many frames per second one session may send.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    /// Starts full: a new session may send `burst` frames at once.
    pub fn new(per_second: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            refilled: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled = now;
    }

    /// Takes one token at `now`; false when the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if 1.0 - self.tokens > 1e-9 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// How long until a token is there: `None` when one is there now.
    pub fn wait(&mut self, now: Instant) -> Option<Duration> {
        self.refill(now);
        // Float refills land a hair below a whole token; that counts as one,
        // or a waiter would be woken again nanoseconds later.
        let missing = 1.0 - self.tokens;
        (missing > 1e-9).then(|| Duration::from_secs_f64(missing / self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 5);
        assert!((0..5).all(|_| bucket.take(start)));
        assert!(!bucket.take(start));
        // 100 ms buys exactly one more frame at 10 per second.
        let later = start + Duration::from_millis(100);
        assert!(bucket.take(later));
        assert!(!bucket.take(later));
        // A long pause refills to the burst, not beyond.
        let much_later = later + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.take(much_later)).count(), 5);
    }

    #[test]
    fn an_empty_bucket_says_how_long_until_the_next_token() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 1);
        assert_eq!(bucket.wait(start), None);
        assert!(bucket.take(start));
        let wait = bucket.wait(start).expect("empty");
        assert!(wait > Duration::from_millis(99) && wait <= Duration::from_millis(100));
        assert_eq!(bucket.wait(start + wait), None);
        assert!(bucket.take(start + wait));
    }

    #[test]
    fn idle_time_never_buys_more_than_one_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 5);
        let later = start + Duration::from_secs(10);
        assert_eq!((0..20).filter(|_| bucket.take(later)).count(), 5);
    }
}
