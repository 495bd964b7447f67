//! The broker under soak: started from its binary with a soak configuration on
//! a loopback port, sampled through /proc (RSS, open descriptors), and stopped
//! with SIGTERM at the end.

use crate::procfs;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct BrokerProcess {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

/// One reading of the broker process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub at_s: f64,
    pub rss_kib: u64,
    pub open_fds: usize,
}

/// Small queues so slow consumers are cut within seconds, not minutes, and a
/// frame deadline the garbage senders' unfinished frames meet within their wait.
fn config(port: u16) -> String {
    format!(
        "[server]\nbind = \"127.0.0.1:{port}\"\nweb_root = \"/nonexistent\"\n\n\
         [demo]\nenabled = false\n\n\
         [limits]\noutbound_queue_bytes = 65536\nsend_time_limit_ms = 3000\nframe_timeout_ms = 2000\n"
    )
}

impl BrokerProcess {
    pub fn start(binary: &Path, port: u16) -> Result<BrokerProcess, String> {
        let dir = std::env::temp_dir().join(format!("stomphub-soak-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let config = dir.join("broker.toml");
        std::fs::write(&config, self::config(port)).map_err(|e| e.to_string())?;
        let log = dir.join("broker.log");
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut broker = BrokerProcess { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || broker.child.try_wait().ok().flatten().is_some() {
                return Err(format!(
                    "the broker did not start; see {}",
                    broker.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the probe connection above close before the baseline is read.
        std::thread::sleep(Duration::from_millis(200));
        broker.port = port;
        Ok(broker)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sample(&self, started: Instant) -> Sample {
        let pid = self.pid().to_string();
        let rss_kib = procfs::usage(&pid).map_or(0, |usage| usage.rss_kib);
        let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count());
        Sample {
            at_s: started.elapsed().as_secs_f64(),
            rss_kib,
            open_fds,
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    pub fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok().and_then(|s| s.code())
    }
}
