//! Process figures for reports: CPU seconds, cores used and RSS over a phase.

use crate::procfs::{self, Usage};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Serialize, Default)]
pub struct ProcessFigures {
    pub cpu_seconds: f64,
    pub cores_used: f64,
    pub rss_kib: u64,
}

/// What a process used between two samples `seconds` apart.
pub fn figures(
    before: Option<Usage>,
    after: Option<Usage>,
    seconds: f64,
) -> Option<ProcessFigures> {
    let (before, after) = (before?, after?);
    let cpu_seconds = after.cpu_seconds - before.cpu_seconds;
    Some(ProcessFigures {
        cpu_seconds,
        cores_used: cpu_seconds / seconds.max(1e-9),
        rss_kib: after.rss_kib,
    })
}

/// CPU and RSS of the broker and of this generator over one measured phase.
pub struct Measurement {
    broker_pid: Option<String>,
    broker_before: Option<Usage>,
    generator_before: Option<Usage>,
    started: Instant,
}

impl Measurement {
    pub fn start(broker_pid: Option<u32>) -> Self {
        let broker_pid = broker_pid.map(|pid| pid.to_string());
        Measurement {
            broker_before: broker_pid.as_deref().and_then(procfs::usage),
            generator_before: procfs::usage("self"),
            broker_pid,
            started: Instant::now(),
        }
    }

    /// Seconds since the start, and what the broker and the generator used.
    pub fn finish(self) -> (f64, Option<ProcessFigures>, ProcessFigures) {
        let seconds = self.started.elapsed().as_secs_f64();
        let broker_after = self.broker_pid.as_deref().and_then(procfs::usage);
        let broker = figures(self.broker_before, broker_after, seconds);
        let generator =
            figures(self.generator_before, procfs::usage("self"), seconds).unwrap_or_default();
        (seconds, broker, generator)
    }
}

/// Waits for every publisher task and returns what each reported.
pub async fn join_publishers<T>(
    publishers: Vec<tokio::task::JoinHandle<Result<T, String>>>,
) -> Result<Vec<T>, String> {
    let mut results = Vec::with_capacity(publishers.len());
    for publisher in publishers {
        results.push(publisher.await.map_err(|e| e.to_string())??);
    }
    Ok(results)
}
