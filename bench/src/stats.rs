//! Per-subscriber accounting: latency histogram and exact loss, duplicate and
//! reorder counts from the sequence numbers carried in each body.

use hdrhistogram::Histogram;
use serde::Serialize;

/// The payload prefix every benchmark message starts with: `publisher:sequence:sent_ns:`.
pub fn body(publisher: usize, sequence: u64, sent_ns: u64, size: usize) -> String {
    let mut body = format!("{publisher}:{sequence}:{sent_ns}:");
    if body.len() < size {
        body.extend(std::iter::repeat_n('x', size - body.len()));
    }
    body
}

/// Parses `publisher:sequence:sent_ns:` from the front of a body.
pub fn parse(body: &[u8]) -> Option<(usize, u64, u64)> {
    let mut fields = body.splitn(4, |&b| b == b':');
    let mut number = || -> Option<u64> { std::str::from_utf8(fields.next()?).ok()?.parse().ok() };
    Some((number()? as usize, number()?, number()?))
}

/// What one subscriber saw from one publisher.
#[derive(Debug, Clone)]
struct Sequence {
    seen: Vec<u64>,
    unique: u64,
    duplicates: u64,
    reordered: u64,
    highest: Option<u64>,
}

impl Sequence {
    fn new(expected: u64) -> Self {
        Sequence {
            seen: vec![0; (expected as usize).div_ceil(64)],
            unique: 0,
            duplicates: 0,
            reordered: 0,
            highest: None,
        }
    }

    fn record(&mut self, sequence: u64) {
        let (word, bit) = ((sequence / 64) as usize, 1u64 << (sequence % 64));
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= bit;
        self.unique += 1;
        match self.highest {
            Some(highest) if sequence < highest => self.reordered += 1,
            _ => self.highest = Some(sequence),
        }
    }
}

/// Everything one subscriber measured.
#[derive(Debug, Clone)]
pub struct SubscriberStats {
    sequences: Vec<Sequence>,
    pub latency_ns: Histogram<u64>,
    pub received: u64,
    pub malformed: u64,
}

impl SubscriberStats {
    pub fn new(publishers: usize, expected_per_publisher: u64) -> Self {
        SubscriberStats {
            sequences: (0..publishers)
                .map(|_| Sequence::new(expected_per_publisher))
                .collect(),
            latency_ns: Histogram::new_with_bounds(1_000, 120_000_000_000, 3)
                .expect("valid histogram bounds"),
            received: 0,
            malformed: 0,
        }
    }

    pub fn record(&mut self, body: &[u8], now_ns: u64) {
        self.received += 1;
        match parse(body) {
            Some((publisher, sequence, sent_ns)) if publisher < self.sequences.len() => {
                self.sequences[publisher].record(sequence);
                let latency = now_ns.saturating_sub(sent_ns).max(1_000);
                self.latency_ns.saturating_record(latency);
            }
            _ => self.malformed += 1,
        }
    }
}

/// Totals over all subscribers.
#[derive(Debug, Default, Serialize)]
pub struct Delivery {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub malformed: u64,
    /// Subscribers that saw any loss, duplicate or reordering.
    pub subscribers_with_errors: usize,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub samples: u64,
}

/// Sums what the subscribers saw; `expected(s, p)` is what subscriber `s` should
/// have received from publisher `p`.
pub fn summarise(
    subscribers: &[SubscriberStats],
    expected: impl Fn(usize, usize) -> u64,
) -> (Delivery, Latency) {
    let mut delivery = Delivery::default();
    let mut latency = Histogram::<u64>::new_with_bounds(1_000, 120_000_000_000, 3).expect("bounds");
    for (index, subscriber) in subscribers.iter().enumerate() {
        let mut faulty = subscriber.malformed > 0;
        for (publisher, sequence) in subscriber.sequences.iter().enumerate() {
            let sent = expected(index, publisher);
            delivery.expected += sent;
            delivery.lost += sent.saturating_sub(sequence.unique);
            delivery.duplicates += sequence.duplicates;
            delivery.reordered += sequence.reordered;
            faulty |= sequence.unique != sent || sequence.duplicates > 0 || sequence.reordered > 0;
        }
        delivery.received += subscriber.received;
        delivery.malformed += subscriber.malformed;
        delivery.subscribers_with_errors += usize::from(faulty);
        let _ = latency.add(&subscriber.latency_ns);
    }
    (delivery, Latency::of(&latency))
}

impl Latency {
    /// The quantiles of a histogram of nanoseconds, in microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1_000.0;
        Latency {
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
            samples: histogram.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_parse_back_and_have_the_requested_size() {
        let text = body(3, 42, 1_000_000, 128);
        assert_eq!(text.len(), 128);
        assert_eq!(parse(text.as_bytes()), Some((3, 42, 1_000_000)));
        assert_eq!(parse(b"garbage"), None);
    }

    #[test]
    fn loss_duplicates_and_reordering_are_counted_exactly() {
        let mut stats = SubscriberStats::new(1, 5);
        for sequence in [0, 2, 1, 2, 4] {
            stats.record(body(0, sequence, 0, 16).as_bytes(), 5_000);
        }
        let (delivery, _) = summarise(&[stats], |_, _| 5);
        assert_eq!(delivery.lost, 1, "3 never arrived");
        assert_eq!(delivery.duplicates, 1);
        assert_eq!(delivery.reordered, 1, "1 came after 2");
        assert_eq!(delivery.subscribers_with_errors, 1);
    }
}
