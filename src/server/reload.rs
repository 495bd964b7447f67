//! Taking on a new configuration while running (`SIGHUP`, `POST /api/reload`):
//! `[[acl]]`, `[auth]`, `[api]`, `server.allowed_origins`, `[limits]`,
//! `[[route]]`, `[[history]]`, `[log] level` and the TLS certificates change for new
//! frames and connections, and no connection is dropped. Everything is built
//! and checked before anything is replaced, so a file that fails changes
//! nothing. What only a restart can change is named in the report and logged.

use super::build::{connection_limits, history_rules, session_limits};
use crate::config::Config;
use crate::config::ConfigError;
use crate::hub::{Hub, ReloadReport};
use crate::security::origin::OriginPolicy;
use crate::security::{AccessRules, Authenticator};
use crate::transport::tls::CertSlot;
use std::sync::{Arc, Mutex};

/// Sets the log filter (`[log] level`); the binary owns the subscriber.
pub type LogLevelHook = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// What a reload compares with and where it puts what it built.
pub(super) struct ReloadState {
    pub current: Mutex<Config>,
    /// What the server started with: a key only a restart changes stays
    /// reported on every reload until then.
    pub started: Config,
    pub server_cert: Option<Arc<CertSlot>>,
    pub tcp_cert: Option<Arc<CertSlot>>,
    pub log_level: Arc<std::sync::OnceLock<LogLevelHook>>,
}

pub(super) fn apply(
    hub: &Hub,
    state: &ReloadState,
    new: Config,
) -> Result<ReloadReport, ConfigError> {
    let mut current = state.current.lock().unwrap_or_else(|p| p.into_inner());
    new.validate()?;
    // Everything that can fail, first.
    let access = AccessRules::new(&new.acl)?;
    let auth = Authenticator::new(&new.auth)?;
    let origins = OriginPolicy::new(&new.server.allowed_origins)?;
    let history = history_rules(&new)?;
    // Routes under the prefixes and with the [proxy] settings the server runs
    // with (both take a restart).
    let started = &state.started;
    let route_proxy = new
        .routes
        .iter()
        .any(|route| route.proxy.is_some())
        .then(|| crate::proxy::Proxy::new(&started.proxy).map(Arc::new))
        .transpose()?;
    let routes = crate::app::config_routes::mappings(
        &new.routes,
        (&started.stomp.app_prefixes, &started.stomp.broker_prefixes),
        route_proxy.as_ref(),
    )?;
    let server_cert = match (&state.server_cert, &new.server.tls) {
        (Some(slot), Some(tls)) => Some((slot, slot.load(tls)?)),
        _ => None,
    };
    let tcp_cert = match (&state.tcp_cert, &new.tcp.tls) {
        (Some(slot), Some(tls)) => Some((slot, slot.load(tls)?)),
        _ => None,
    };
    if let Some(set_level) = state.log_level.get()
        && new.log.level != current.log.level
    {
        set_level(&new.log.level).map_err(|reason| ConfigError::invalid("log.level", reason))?;
    }

    let mut report = ReloadReport {
        needs_restart: needs_restart(&state.started, &new),
        ..ReloadReport::default()
    };
    let mut applied = |section: &'static str, changed: bool| {
        if changed {
            report.applied.push(section);
        }
    };
    applied("acl", new.acl != current.acl);
    hub.app.settings.access.store(Arc::new(access));
    applied("auth", new.auth != current.auth);
    hub.app.settings.auth.store(Arc::new(auth));
    applied("api", new.api != current.api);
    hub.settings.api.store(Arc::new(new.api.clone()));
    applied(
        "server.allowed_origins",
        new.server.allowed_origins != current.server.allowed_origins,
    );
    hub.origins.replace(&origins);
    applied(
        "limits",
        new.limits != current.limits || new.stomp.heartbeat != current.stomp.heartbeat,
    );
    hub.sessions.replace_limits(session_limits(&new));
    hub.admission.set_limits(connection_limits(&new, false));
    applied("route", new.routes != current.routes);
    hub.app.router.replace_configured(routes);
    applied("history", new.history != current.history);
    hub.broker().replace_history_rules(history);
    applied("log.level", new.log.level != current.log.level);
    // Renewed files keep their names: certificates are read again every time.
    if let Some((slot, cert)) = server_cert {
        slot.install(cert);
        applied("server.tls", true);
    }
    if let Some((slot, cert)) = tcp_cert {
        slot.install(cert);
        applied("tcp.tls", true);
    }
    for key in &report.needs_restart {
        tracing::warn!(
            key,
            "differs from the running configuration; takes effect at the next restart"
        );
    }
    *current = new;
    Ok(report)
}

/// The keys a running server cannot take on: listeners, threads, transports,
/// prefixes, the cluster, the application proxy, the demo.
fn needs_restart(current: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut check = |key: &'static str, changed: bool| {
        if changed {
            keys.push(key);
        }
    };
    let (old_server, new_server) = (&current.server, &new.server);
    check("server.bind", old_server.bind != new_server.bind);
    check(
        "server.worker_threads",
        old_server.worker_threads != new_server.worker_threads,
    );
    check(
        "server.web_root",
        old_server.web_root != new_server.web_root,
    );
    check(
        "server.tls",
        old_server.tls.is_some() != new_server.tls.is_some(),
    );
    check(
        "server.trusted_proxies",
        old_server.trusted_proxies != new_server.trusted_proxies,
    );
    check(
        "server.shutdown_timeout_ms",
        old_server.shutdown_timeout_ms != new_server.shutdown_timeout_ms,
    );
    check(
        "server.tcp_keepalive_*",
        (
            old_server.tcp_keepalive_idle_ms,
            old_server.tcp_keepalive_interval_ms,
            old_server.tcp_keepalive_retries,
        ) != (
            new_server.tcp_keepalive_idle_ms,
            new_server.tcp_keepalive_interval_ms,
            new_server.tcp_keepalive_retries,
        ),
    );
    check(
        "stomp",
        (
            &current.stomp.endpoint,
            &current.stomp.app_prefixes,
            &current.stomp.broker_prefixes,
            current.stomp.heartbeat_min_ms,
            current.stomp.user_from_login,
        ) != (
            &new.stomp.endpoint,
            &new.stomp.app_prefixes,
            &new.stomp.broker_prefixes,
            new.stomp.heartbeat_min_ms,
            new.stomp.user_from_login,
        ),
    );
    check(
        "limits.max_queued_bytes_total",
        current.limits.max_queued_bytes_total != new.limits.max_queued_bytes_total,
    );
    check(
        "limits.max_pending_app_messages",
        current.limits.max_pending_app_messages != new.limits.max_pending_app_messages,
    );
    check(
        "limits.handshake_timeout_ms",
        current.limits.handshake_timeout_ms != new.limits.handshake_timeout_ms,
    );
    check("websocket", current.websocket != new.websocket);
    check("sse", current.sse != new.sse);
    check("sockjs", current.sockjs != new.sockjs);
    check(
        "tcp",
        (
            current.tcp.bind,
            current.tcp.proxy_protocol,
            current.tcp.tls.is_some(),
        ) != (new.tcp.bind, new.tcp.proxy_protocol, new.tcp.tls.is_some()),
    );
    check("cluster", current.cluster != new.cluster);
    check("proxy", current.proxy != new.proxy);
    check("demo", current.demo != new.demo);
    check("log.format", current.log.format != new.log.format);
    keys
}
