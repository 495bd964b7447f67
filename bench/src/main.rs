//! `stomphub-bench`: a load generator for STOMP-over-WebSocket brokers on loopback
//! (subscribers and idle connections may also use plain WebSocket endpoints or
//! STOMP over TCP). Prints a readable summary and the full report as JSON.

use stomphub_bench::conns::ConnTransport;
use stomphub_bench::subscribers::SubscriberTransport;
use stomphub_bench::{client, conns, fanout, p2p, proxy, stats, subscribe};

use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "stomphub-bench",
    version,
    about = "STOMP-over-WebSocket load generator (loopback only)"
)]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Args)]
struct TargetArgs {
    /// Broker WebSocket URL (loopback only).
    #[arg(
        long,
        global = true,
        default_value = "ws://127.0.0.1:8080/endpoint-websocket"
    )]
    url: String,
    /// A plain WebSocket endpoint (`[[websocket.endpoint]]`, loopback only),
    /// for `plain-websocket` subscribers and connections.
    #[arg(long, global = true)]
    plain_url: Option<String>,
    /// The broker's STOMP-over-TCP listener, `stomp://host:port` (loopback
    /// only), for `tcp` subscribers and connections.
    #[arg(long, global = true)]
    tcp_url: Option<String>,
    /// CONNECT `host` header (RabbitMQ: `/`).
    #[arg(long, global = true, default_value = "localhost")]
    host: String,
    #[arg(long, global = true)]
    login: Option<String>,
    #[arg(long, global = true)]
    passcode: Option<String>,
    /// Offer only this WebSocket subprotocol (romp: `stomp`) instead of
    /// v12.stomp, v11.stomp and v10.stomp.
    #[arg(long, global = true)]
    subprotocol: Option<String>,
    /// Broker process id, for its CPU time and RSS.
    #[arg(long, global = true)]
    broker_pid: Option<u32>,
    /// Also write the JSON report to this file.
    #[arg(long, global = true)]
    json: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Scenario {
    /// N subscribers on one destination, P publishers.
    Fanout(FanoutArgs),
    /// N users on their own destinations, P publishers to random users.
    P2p(P2pArgs),
    /// N idle connections with one subscription each, held for S seconds.
    Conns(ConnsArgs),
    /// N sessions sending to an `/app` route answered by an HTTP application
    /// that this generator serves (`[[route]] proxy`); each times its replies.
    Proxy(ProxyArgs),
    /// SUBSCRIBE-to-RECEIPT latency, for new destinations and for one already
    /// subscribed, alternating on one connection.
    Subscribe(SubscribeArgs),
}

#[derive(Args)]
struct SubscribeArgs {
    /// Subscriptions of each kind.
    #[arg(long, default_value_t = 2_000)]
    subscriptions: usize,
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
}

#[derive(Args)]
struct ProxyArgs {
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// SENDs per session.
    #[arg(long, default_value_t = 2_000)]
    messages: u64,
    /// SENDs in flight per session.
    #[arg(long, default_value_t = 1)]
    window: u64,
    #[arg(long, default_value_t = 128)]
    body: usize,
    /// The `/app` destination: a route with `proxy` pointing at `--app-bind`
    /// `/stomp/app`, or, for the baseline, one with `to_user` = the reply destination.
    #[arg(long, default_value = "/app/bench/proxied")]
    destination: String,
    /// Where replies arrive, below `/user` (the sender's own queue).
    #[arg(long, default_value = "/queue/proxy-bench")]
    reply_destination: String,
    /// Where this generator serves the application (loopback only).
    #[arg(long, default_value = "127.0.0.1:18093")]
    app_bind: std::net::SocketAddr,
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
}

#[derive(Args)]
struct P2pArgs {
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Messages per publisher.
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    #[arg(long, default_value_t = 128)]
    body: usize,
    /// `{id}` becomes the user number (RabbitMQ: /topic/single.{id}).
    #[arg(long, default_value = "/chat/single/{id}")]
    destination_template: String,
    /// Messages in flight over all publishers.
    #[arg(long, default_value_t = 2048)]
    window: u64,
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
}

#[derive(Args)]
struct ConnsArgs {
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// What each connection is: STOMP over WebSocket (CONNECT + SUBSCRIBE),
    /// a plain WebSocket on `--plain-url` (subscribed by the endpoint), or
    /// STOMP over TCP on `--tcp-url` (CONNECT + SUBSCRIBE).
    #[arg(long, value_enum, default_value_t = ConnTransport::Stomp)]
    transport: ConnTransport,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Client source addresses 127.0.0.1 ..= 127.0.0.N.
    #[arg(long, default_value_t = 1)]
    source_addresses: u8,
    /// Seconds to hold the connections.
    #[arg(long, default_value_t = 5)]
    hold_seconds: u64,
    /// What the STOMP connections subscribe to (a plain endpoint's own
    /// `subscribe` list decides for its sockets).
    #[arg(long, default_value = "/topic/idle")]
    destination: String,
}

#[derive(Args)]
struct FanoutArgs {
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// How those subscribers connect: STOMP over WebSocket, STOMP over SockJS's
    /// `websocket` or `xhr_streaming` transport, a plain WebSocket endpoint at
    /// `--plain-url` (bare bodies), or STOMP over TCP at `--tcp-url`.
    /// Publishers always use STOMP over WebSocket.
    #[arg(long, value_enum, default_value_t = SubscriberTransport::Stomp)]
    subscriber_transport: SubscriberTransport,
    /// Server-sent-events subscribers on the same destination (`GET /sse/subscribe`).
    #[arg(long, default_value_t = 0)]
    sse_subscribers: usize,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Messages per publisher.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    #[arg(long, default_value_t = 128)]
    body: usize,
    #[arg(long, default_value = "/topic/bench")]
    destination: String,
    /// Max-rate mode: messages in flight before publishers wait for the slowest subscriber.
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// Offered rate in messages/s over all publishers (omit for max rate).
    #[arg(long)]
    rate: Option<u64>,
    /// Upper bound on the publishing phase, in seconds.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// Spread the subscribers round-robin over these broker URLs (other
    /// cluster nodes) instead of `--url`, which the publishers keep using.
    #[arg(long, value_delimiter = ',')]
    subscriber_urls: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let target = client::Target {
        url: cli.target.url.clone(),
        host: cli.target.host.clone(),
        login: cli.target.login.clone(),
        passcode: cli.target.passcode.clone(),
        subprotocol: cli.target.subprotocol.clone(),
    };
    let broker_pid = cli.target.broker_pid;
    let result: Result<serde_json::Value, String> = match cli.scenario {
        Scenario::Fanout(args) => runtime
            .block_on(fanout::run(fanout::FanoutOptions {
                subscriber_targets: args
                    .subscriber_urls
                    .iter()
                    .map(|url| client::Target {
                        url: url.clone(),
                        ..target.clone()
                    })
                    .collect(),
                target,
                destination: args.destination,
                subscribers: args.subscribers,
                subscriber_transport: args.subscriber_transport,
                plain_url: cli.target.plain_url.clone(),
                tcp_url: cli.target.tcp_url.clone(),
                sse_subscribers: args.sse_subscribers,
                publishers: args.publishers,
                messages: args.messages,
                body_size: args.body,
                window: args.window.max(1),
                rate: args.rate,
                max_duration: Duration::from_secs(args.max_seconds),
                drain: Duration::from_secs(10),
                broker_pid,
            }))
            .map(|report| {
                print_fanout(&report);
                serde_json::to_value(report).unwrap_or_default()
            }),
        Scenario::P2p(args) => runtime
            .block_on(p2p::run(p2p::P2pOptions {
                target,
                destination_template: args.destination_template,
                users: args.users.max(1),
                publishers: args.publishers.max(1),
                messages: args.messages,
                body_size: args.body,
                window: args.window.max(1),
                max_duration: Duration::from_secs(args.max_seconds),
                drain: Duration::from_secs(10),
                broker_pid,
            }))
            .map(|report| {
                print_p2p(&report);
                serde_json::to_value(report).unwrap_or_default()
            }),
        Scenario::Conns(args) => runtime
            .block_on(conns::run(conns::ConnsOptions {
                target,
                transport: args.transport,
                plain_url: cli.target.plain_url.clone(),
                tcp_url: cli.target.tcp_url.clone(),
                destination: args.destination,
                connections: args.connections,
                concurrency: args.concurrency,
                source_addresses: args.source_addresses.max(1),
                hold: Duration::from_secs(args.hold_seconds),
                broker_pid,
            }))
            .map(|report| {
                print_conns(&report);
                serde_json::to_value(report).unwrap_or_default()
            }),
        Scenario::Subscribe(args) => runtime
            .block_on(subscribe::run(subscribe::SubscribeOptions {
                target,
                subscriptions: args.subscriptions,
                max_duration: Duration::from_secs(args.max_seconds),
            }))
            .map(|report| {
                eprintln!(
                    "subscribe: {} of each kind in {:.2} s",
                    report.new_destination.samples, report.seconds
                );
                eprint!("  new destination:");
                print_latency(&report.new_destination);
                eprint!("  existing destination:");
                print_latency(&report.existing_destination);
                serde_json::to_value(report).unwrap_or_default()
            }),
        Scenario::Proxy(args) => runtime
            .block_on(proxy::run(proxy::ProxyOptions {
                target,
                app_bind: args.app_bind,
                destination: args.destination,
                reply_destination: args.reply_destination,
                sessions: args.sessions,
                messages: args.messages,
                window: args.window.max(1),
                body_size: args.body,
                max_duration: Duration::from_secs(args.max_seconds),
                broker_pid,
            }))
            .map(|report| {
                print_proxy(&report);
                serde_json::to_value(report).unwrap_or_default()
            }),
    };
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    println!("{json}");
    if let Some(path) = cli.target.json
        && let Err(error) = std::fs::write(&path, &json)
    {
        eprintln!("error: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    // Runtime shutdown would wait for idle subscriber sockets; exit instead.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::SUCCESS
}

fn print_latency(l: &stats::Latency) {
    eprintln!(
        "  latency us: p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}",
        l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us
    );
}

fn print_delivery(d: &stats::Delivery) {
    eprintln!(
        "  delivered {} of {}: lost {}, duplicates {}, reordered {}, malformed {}",
        d.received, d.expected, d.lost, d.duplicates, d.reordered, d.malformed
    );
}

fn print_p2p(report: &p2p::P2pReport) {
    eprintln!(
        "p2p {} publishers -> {} users, {} B bodies: {} published, {:.0} messages/s over {:.2} s",
        report.publishers,
        report.users,
        report.body_size,
        report.published,
        report.messages_per_second,
        report.seconds
    );
    print_delivery(&report.delivery);
    print_latency(&report.latency);
    if let Some(broker) = &report.broker {
        eprintln!(
            "  broker: {:.2} CPU s ({:.2} cores), RSS {} KiB",
            broker.cpu_seconds, broker.cores_used, broker.rss_kib
        );
    }
    eprintln!(
        "  generator: {:.2} CPU s ({:.2} cores)",
        report.generator.cpu_seconds, report.generator.cores_used
    );
}

fn print_proxy(report: &proxy::ProxyReport) {
    eprintln!(
        "proxy {} sessions x window {} -> {}: {} replies to {} sends ({} app calls, {} out of order), {:.0} messages/s over {:.2} s",
        report.sessions,
        report.window,
        report.destination,
        report.replies,
        report.sent,
        report.app_calls,
        report.reordered,
        report.messages_per_second,
        report.seconds
    );
    print_latency(&report.latency);
    if let Some(broker) = &report.broker {
        eprintln!(
            "  broker: {:.2} CPU s ({:.2} cores), {:.1} us per message",
            broker.cpu_seconds,
            broker.cores_used,
            broker.cpu_seconds * 1e6 / report.replies.max(1) as f64
        );
    }
    eprintln!(
        "  generator and application: {:.2} CPU s ({:.2} cores)",
        report.generator.cpu_seconds, report.generator.cores_used
    );
}

fn print_conns(report: &conns::ConnsReport) {
    eprintln!(
        "conns ({}): {} of {} established in {:.2} s ({:.0}/s), {} failed{}",
        report.transport.name(),
        report.established,
        report.requested,
        report.setup_seconds,
        report.setups_per_second,
        report.failures,
        report
            .first_failure
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    let l = &report.setup_latency;
    eprintln!(
        "  set-up us: p50 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}",
        l.p50_us, l.p99_us, l.p999_us, l.max_us
    );
    if let (Some(before), Some(held), Some(each)) = (
        report.broker_rss_before_kib,
        report.broker_rss_held_kib,
        report.broker_rss_per_connection_kib,
    ) {
        eprintln!("  broker RSS {before} KiB -> {held} KiB: {each:.1} KiB per connection");
    }
}

fn print_fanout(report: &fanout::FanoutReport) {
    let d = &report.delivery;
    let l = &report.latency;
    eprintln!(
        "fanout {} -> {} {} + {} SSE subscribers, {} B bodies, {}: {} published, {:.0} deliveries/s over {:.2} s",
        report.publishers,
        report.subscribers,
        report.subscriber_transport.name(),
        report.sse_subscribers,
        report.body_size,
        report
            .offered_rate
            .map_or("max rate".to_owned(), |r| format!("{r} msg/s offered")),
        report.published,
        report.deliveries_per_second,
        report.seconds,
    );
    print_delivery(d);
    print_latency(l);
    if let Some(broker) = &report.broker {
        eprintln!(
            "  broker: {:.2} CPU s ({:.2} cores), {:.3} us CPU per delivery, RSS {} KiB",
            broker.cpu_seconds,
            broker.cores_used,
            report.broker_cpu_us_per_delivery.unwrap_or(0.0),
            broker.rss_kib
        );
    }
    eprintln!(
        "  generator: {:.2} CPU s ({:.2} cores)",
        report.generator.cpu_seconds, report.generator.cores_used
    );
}
