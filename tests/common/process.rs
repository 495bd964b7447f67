//! The `stomphub` binary as a child process, for tests of what only a real
//! process shows (signals, the CLI, several nodes).

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStderr, Command, Stdio};

pub type LogLines = Lines<BufReader<ChildStderr>>;

/// Spawns `command` (a `stomphub serve` bound to port 0) with INFO logs on a
/// pipe, and waits for the address it logs; the rest of the log is returned
/// for the caller to read or drain (a full pipe would stall the process).
pub fn spawn_listening(command: &mut Command) -> (Child, String, LogLines) {
    let (child, addr, _, lines) = spawn_listening_with_start_log(command);
    (child, addr, lines)
}

/// As [`spawn_listening`], also returning the lines logged before listening
/// (what the process said about its configuration and limits).
pub fn spawn_listening_with_start_log(
    command: &mut Command,
) -> (Child, String, Vec<String>, LogLines) {
    let mut child = command
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stomphub");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut start_log = Vec::new();
    let addr = loop {
        let line = lines.next().expect("a log line").expect("utf-8 log");
        // `http://` or, with [server.tls], `https://`.
        if let Some(rest) = line
            .split("listening on http://")
            .nth(1)
            .or_else(|| line.split("listening on https://").nth(1))
        {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
        start_log.push(line);
    };
    (child, addr, start_log, lines)
}
