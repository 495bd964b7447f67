//! Process figures for reports: CPU seconds, cores used and RSS over a phase.

use crate::procfs::Usage;
use serde::Serialize;

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
