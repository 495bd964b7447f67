//! Installs the demo pages' npm packages (`web/package.json`: `@stomp/stompjs`,
//! `sockjs-client`, `stompjs`) when they are missing or older than the lock file,
//! so that `cargo run --release` alone serves working pages on a fresh machine.
//! The broker itself never needs them; without npm the build still succeeds and
//! prints how to install them by hand.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|meta| meta.modified()).ok()
}

fn main() {
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
