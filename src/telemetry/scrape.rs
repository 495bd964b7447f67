//! Families read at scrape time from state that is counted elsewhere already
//! (sessions, queues, the broker's and the cluster's counters): built afresh
//! for each scrape, so the paths that count them pay nothing more.

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, Opts};

#[derive(Default)]
pub struct Scrape {
    families: Vec<MetricFamily>,
}

impl Scrape {
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        match Gauge::with_opts(Opts::new(name, help)) {
            Ok(gauge) => {
                gauge.set(value);
                self.families.extend(gauge.collect());
            }
            Err(error) => tracing::error!(name, %error, "bad metric"),
        }
    }

    /// One gauge per value of `label`.
    pub fn gauge_by(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (String, f64)>,
    ) {
        match GaugeVec::new(Opts::new(name, help), &[label]) {
            Ok(gauges) => {
                for (value_of_label, value) in values {
                    gauges.with_label_values(&[value_of_label]).set(value);
                }
                self.families.extend(gauges.collect());
            }
            Err(error) => tracing::error!(name, %error, "bad metric"),
        }
    }

    /// A counter whose total is kept elsewhere.
    pub fn counter(&mut self, name: &str, help: &str, total: u64) {
        match IntCounter::with_opts(Opts::new(name, help)) {
            Ok(counter) => {
                counter.inc_by(total);
                self.families.extend(counter.collect());
            }
            Err(error) => tracing::error!(name, %error, "bad metric"),
        }
    }

    /// One counter per value of `label`, totals kept elsewhere.
    pub fn counter_by(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        totals: impl IntoIterator<Item = (&'static str, u64)>,
    ) {
        match IntCounterVec::new(Opts::new(name, help), &[label]) {
            Ok(counters) => {
                for (value_of_label, total) in totals {
                    counters.with_label_values(&[value_of_label]).inc_by(total);
                }
                self.families.extend(counters.collect());
            }
            Err(error) => tracing::error!(name, %error, "bad metric"),
        }
    }

    /// The families with at least one sample: the text encoder refuses an
    /// empty one (a labelled family nobody has a value for yet, such as the
    /// sessions of a node without any).
    pub(super) fn families(self) -> Vec<MetricFamily> {
        self.families
            .into_iter()
            .filter(|family| !family.get_metric().is_empty())
            .collect()
    }
}
