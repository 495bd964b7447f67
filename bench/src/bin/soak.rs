//! `stomphub-soak`: runs a broker under bounded mixed load and reports whether
//! every well-behaved subscriber got every message and the broker's resources
//! returned to idle. Run by hand (minutes), not in CI; see docs/security.md.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use stomphub_bench::soak::{self, SoakOptions};

#[derive(Parser)]
#[command(
    name = "stomphub-soak",
    version,
    about = "Bounded mixed-load soak of a stomphub binary (loopback only)"
)]
struct Cli {
    /// The broker binary to start.
    #[arg(long, default_value = "target/release/stomphub")]
    broker: PathBuf,
    /// Loopback port for the broker.
    #[arg(long, default_value_t = 18090)]
    port: u16,
    /// How long the load runs, in seconds (at most one hour).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(5..=3600))]
    duration_s: u64,
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Messages per second from each publisher.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=900))]
    rate: u32,
    #[arg(long, default_value_t = 50)]
    subscribers: usize,
    #[arg(long, default_value_t = 8)]
    churners: usize,
    #[arg(long, default_value_t = 4)]
    slow_consumers: usize,
    #[arg(long, default_value_t = 2)]
    garbage_senders: usize,
    /// Where to write the JSON report.
    #[arg(long, default_value = "soak-report.json")]
    report: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = SoakOptions {
        broker: cli.broker,
        port: cli.port,
        duration: Duration::from_secs(cli.duration_s),
        publishers: cli.publishers,
        rate_per_publisher: cli.rate,
        subscribers: cli.subscribers,
        churners: cli.churners,
        slow_consumers: cli.slow_consumers,
        garbage_senders: cli.garbage_senders,
        sample_every: Duration::from_secs(5),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(soak::run(options)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let received = &report.received_per_subscriber;
    println!(
        "sent {} messages; each of {} subscribers received between {} and {}",
        report.sent,
        received.len(),
        received.iter().min().unwrap_or(&0),
        received.iter().max().unwrap_or(&0)
    );
    println!(
        "lost {} duplicated {} reordered {}; latency p50 {:.0} us p99 {:.0} us max {:.0} us",
        report.delivery.lost,
        report.delivery.duplicates,
        report.delivery.reordered,
        report.latency.p50_us,
        report.latency.p99_us,
        report.latency.max_us
    );
    println!(
        "broker RSS peak {} KiB, end {} KiB; open fds idle {} end {}",
        report.peak_rss_kib, report.end_rss_kib, report.idle_fds, report.end_fds
    );
    println!(
        "churn cycles {} (failed {}); slow consumers cut {} (not cut {}); garbage refused {} (unanswered {})",
        report.churn_cycles,
        report.churn_failures,
        report.slow_consumers_cut,
        report.slow_consumers_not_cut,
        report.garbage_refused,
        report.garbage_unanswered
    );
    match serde_json::to_string_pretty(&report) {
        Ok(json) => {
            if let Err(error) = std::fs::write(&cli.report, json) {
                eprintln!("error: cannot write {}: {error}", cli.report.display());
            }
        }
        Err(error) => eprintln!("error: {error}"),
    }
    println!("{}", if report.passed { "PASSED" } else { "FAILED" });
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
