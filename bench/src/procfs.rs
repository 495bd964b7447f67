//! CPU time and resident memory of a process, read from /proc (Linux).

use serde::Serialize;

/// Clock ticks per second for /proc/*/stat times; 100 on every Linux ABI in use.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub rss_kib: u64,
}

/// `pid` = "self" or a number.
pub fn usage(pid: &str) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis are fixed.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some(Usage {
        cpu_seconds: ticks / TICKS_PER_SECOND,
        rss_kib,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let usage = super::usage("self").expect("/proc is mounted");
        assert!(usage.rss_kib > 0);
    }
}
