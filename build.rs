//! With the `web` feature (on by default), installs the demo pages' npm
//! packages (`web/package.json`: `@stomp/stompjs`, `sockjs-client`, `stompjs`,
//! `uplot`) when they are missing or older than the lock file, so that the
//! pages built into the binary load their scripts and `cargo run --release`
//! alone serves working pages on a fresh machine. Without the feature (a
//! library built with `default-features = false`) nothing runs npm. Without
//! npm the build still succeeds and says how to install the packages by hand.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|meta| meta.modified()).ok()
}

fn main() {
    if std::env::var_os("CARGO_FEATURE_WEB").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=web/package.json");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    // npm writes this after an install: checked on every build until it is
    // newer than the lock file, so a failed or outdated install is retried.
    println!("cargo:rerun-if-changed=web/node_modules/.package-lock.json");
    println!("cargo:rerun-if-env-changed=STOMPHUB_SKIP_NPM");

    let web = Path::new("web");
    let Some(locked) = modified(&web.join("package-lock.json")) else {
        return;
    };
    let installed = modified(&web.join("node_modules/.package-lock.json"));
    if installed.is_some_and(|installed| installed >= locked) {
        return;
    }
    if std::env::var_os("STOMPHUB_SKIP_NPM").is_some() {
        println!("cargo:warning=STOMPHUB_SKIP_NPM is set: demo pages need `npm ci --prefix web`");
        return;
    }
    match Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix", "web"])
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => println!(
            "cargo:warning=`npm ci --prefix web` failed ({status}); the demo pages will not load their scripts"
        ),
        Err(error) => println!(
            "cargo:warning=npm not found ({error}); install Node.js and npm, then run `npm ci --prefix web` for the demo pages"
        ),
    }
}
