//! The `stomphub` command line: parses arguments, loads `broker.toml`, runs the server.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use stomphub::config::{Config, ConfigError, LogConfig, LogFormat};
use stomphub::{Server, shutdown_signal};

#[derive(Parser)]
#[command(
    name = "stomphub",
    version,
    about = "STOMP-over-WebSocket message broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (the default).
    Serve(ServeArgs),
    /// Validate the configuration and print the effective settings (secrets masked).
    CheckConfig,
    /// Ask for a password (twice, without echo, on a terminal; one line from a
    /// pipe) and print its argon2id hash for `[[auth.user]] password_hash`
    /// (not an argument: arguments show in `ps`).
    HashPassword,
}

#[derive(Args)]
struct ConfigArgs {
    /// Configuration file [default: broker.toml, or the built-in defaults
    /// when ./broker.toml does not exist]. A file named here must exist.
    // Global, so that it is read wherever it stands: a copy per subcommand left
    // `stomphub --config x check-config` checking the defaults.
    #[arg(long, short, global = true, env = "STOMPHUB_CONFIG")]
    config: Option<PathBuf>,
    /// This node's name in a cluster, overriding `cluster.node_id`: nodes
    /// can then share one configuration file.
    #[arg(long, global = true, env = "STOMPHUB_NODE_ID")]
    node_id: Option<String>,
}

impl ConfigArgs {
    /// The file to read; `None` for the built-in defaults.
    fn path(&self) -> Option<&Path> {
        match &self.config {
            Some(path) => Some(path),
            None => Some(Path::new(DEFAULT_CONFIG)).filter(|path| path.exists()),
        }
    }
}

const DEFAULT_CONFIG: &str = "broker.toml";

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on, overriding `server.bind`.
    #[arg(long, short, env = "STOMPHUB_BIND")]
    bind: Option<SocketAddr>,
}

/// The configuration file (or the built-in defaults), with the `STOMPHUB_*`
/// environment overrides and the command line's `--node-id`.
fn load(args: &ConfigArgs) -> Result<Config, ConfigError> {
    let mut config = Config::load_with_env(args.path(), std::env::vars())?;
    if let Some(node_id) = &args.node_id {
        config.set_node_id(node_id)?;
    }
    Ok(config)
}

/// Logs to stderr as `[log]` says; `RUST_LOG` wins over `[log] level` at
/// start. Returns how a reload sets the level.
fn init_logging(log: &LogConfig) -> stomphub::LogLevelHook {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, fmt, reload};
    // An empty RUST_LOG (a unit's `Environment=RUST_LOG=`) counts as unset.
    let from_env = std::env::var("RUST_LOG").is_ok_and(|value| !value.trim().is_empty());
    let filter = from_env
        .then(EnvFilter::try_from_default_env)
        .and_then(Result::ok)
        .map_or_else(|| EnvFilter::try_new(&log.level), Ok)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let stderr = std::io::stderr;
    let _ = match log.format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(stderr))
            .try_init(),
    };
    Box::new(move |level: &str| {
        if from_env {
            tracing::warn!("RUST_LOG is set: it keeps deciding what is logged, not [log] level");
            return Ok(());
        }
        let filter = EnvFilter::try_new(level).map_err(|error| error.to_string())?;
        handle.reload(filter).map_err(|error| error.to_string())
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig) => check_config(&cli.config),
        Some(Command::HashPassword) => hash_password(),
        // `--bind` may stand before `serve` as well as after it.
        Some(Command::Serve(args)) => {
            let bind = args.bind.or(cli.serve.bind);
            serve(&cli.config, ServeArgs { bind })
        }
        None => serve(&cli.config, cli.serve),
    }
}

fn check_config(args: &ConfigArgs) -> ExitCode {
    let _ = init_logging(&LogConfig::default());
    // As `serve` does, so that the connection cap it logs is the one `serve` would use.
    stomphub::raise_open_file_limit();
    match load(args).and_then(|config| {
        stomphub::check_config(&config)?;
        Ok(config)
    }) {
        Ok(config) => {
            let source = args.path().map_or_else(
                || "the built-in default configuration".to_owned(),
                |path| path.display().to_string(),
            );
            println!("# {source} is valid; effective configuration:");
            print!("{}", config.redacted().to_toml());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// Why `hash-password` got no password to hash.
#[derive(Debug, thiserror::Error)]
enum PasswordInputError {
    #[error("cannot read the password: {0}")]
    Read(#[from] std::io::Error),
    #[error("empty password")]
    Empty,
    #[error("the two passwords differ")]
    Mismatch,
}

fn hash_password() -> ExitCode {
    let _ = init_logging(&LogConfig::default());
    let password = match read_password() {
        Ok(password) => password,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    match stomphub::hash_password(&password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A person at a terminal types the password unseen, and twice, since a typo
/// they cannot see would end up in the hash; a script pipes one line.
fn read_password() -> Result<String, PasswordInputError> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        // stderr, so that stdout carries only the hash, ready for `>` or `$(...)`.
        let ask = |prompt: &str| {
            let config = rpassword::ConfigBuilder::new()
                .output_writer(std::io::stderr())
                .build();
            rpassword::prompt_password_with_config(prompt, config)
        };
        let password = ask("Password: ")?;
        if !password.is_empty() && ask("Repeat the password: ")? != password {
            return Err(PasswordInputError::Mismatch);
        }
        password
    } else {
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        return Err(PasswordInputError::Empty);
    }
    Ok(password)
}

fn serve(config_args: &ConfigArgs, args: ServeArgs) -> ExitCode {
    // Before building: the default connection cap follows the limit in force.
    let mut config = match load(config_args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let set_log_level = init_logging(&config.log);
    if config_args.path().is_none() {
        tracing::info!("no ./{DEFAULT_CONFIG}; using built-in defaults");
    }
    // Said again now that logging runs (loading came first).
    let overrides: Vec<String> = std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("STOMPHUB_") && name.contains("__"))
        .collect();
    if !overrides.is_empty() {
        tracing::info!(variables = ?overrides, "configuration keys set by STOMPHUB_* environment variables");
    }
    stomphub::raise_open_file_limit();
    if let Some(bind) = args.bind {
        config.server.bind = bind;
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.server.worker_threads > 0 {
        runtime.worker_threads(config.server.worker_threads);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Listening for SIGHUP from the start: its default action ends the
        // process, and a reload may come while the server is still binding.
        let hangups = hangups();
        let server = match Server::bind(config).await {
            Ok(server) => server,
            // A bad entry, or a key or certificate file it names, is a config error.
            Err(error @ stomphub::ServerError::Config(_)) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        let endpoint = server.config().stomp.endpoint.clone();
        let addr = server.local_addr();
        let (http, ws) = match server.config().server.tls {
            Some(_) => ("https", "wss"),
            None => ("http", "ws"),
        };
        tracing::info!(
            "stomphub {} listening on {http}://{addr} (STOMP at {ws}://{addr}{endpoint})",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(addr) = server.tcp_addr() {
            let scheme = match server.config().tcp.tls {
                Some(_) => "stomp+ssl",
                None => "stomp",
            };
            tracing::info!("listening on {scheme}://{addr}");
        }
        // A reload reads the same file with the same overrides.
        let source = ConfigArgs {
            config: config_args.config.clone(),
            node_id: config_args.node_id.clone(),
        };
        server.reload_from(move || {
            let mut config = load(&source)?;
            if let Some(bind) = args.bind {
                config.server.bind = bind;
            }
            Ok(config)
        });
        server.on_log_level(set_log_level);
        reload_on_sighup(hangups, server.reloader());
        let handle = server.shutdown_handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            handle.shutdown();
        });
        match server.run().await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

fn hangups() -> Hangups {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; reload with POST /api/reload");
                None
            }
        }
    }
    #[cfg(not(unix))]
    None
}

/// `SIGHUP` reloads the configuration, as `POST /api/reload` does; the
/// outcome is logged either way.
fn reload_on_sighup(hangups: Hangups, reloader: stomphub::Reloader) {
    #[cfg(unix)]
    if let Some(mut hangups) = hangups {
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let reloader = reloader.clone();
                let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (hangups, reloader);
}
