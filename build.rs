//! Installs the demo pages' npm packages (`web/package.json`, e.g. `@stomp/stompjs`)
//! when they are missing, so that `cargo run --release` alone serves working pages
//! on a fresh machine. The broker itself never needs them; without npm the build
//! still succeeds and prints how to install them by hand.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=web/package.json");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    // Checked again on every build until it exists, so a failed install is retried.
    println!("cargo:rerun-if-changed=web/node_modules/@stomp/stompjs/package.json");
    println!("cargo:rerun-if-env-changed=STOMPHUB_SKIP_NPM");

    let web = Path::new("web");
    if !web.join("package-lock.json").exists()
        || web
            .join("node_modules/@stomp/stompjs/package.json")
            .exists()
    {
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
            "cargo:warning=`npm ci --prefix web` failed ({status}); the demo pages will not load @stomp/stompjs"
        ),
        Err(error) => println!(
            "cargo:warning=npm not found ({error}); install Node.js and npm, then run `npm ci --prefix web` for the demo pages"
        ),
    }
}
