//! The process's open-file limit (`RLIMIT_NOFILE`): raised to the hard limit at
//! start, and the connection cap it leaves room for when `limits.max_connections`
//! is not set.

/// The cap when the limit cannot be read or is unlimited: the fixed default
/// `limits.max_connections` had before it followed the limit.
const FALLBACK_CAP: usize = 10_000;

/// Descriptors kept back from connections, at the least. At the cap the
/// listener still accepts each new connection in order to refuse it, and
/// answers up to 64 of them at a time (`MAX_POLITE_REFUSALS` in
/// `transport/listener.rs`), each holding its socket for up to a second. The
/// process holds a dozen more of its own (standard streams, the listener, the
/// epoll instance and its waker, the signal pipe, two Redis connections with
/// `[cluster]`), and a static file served from `web_root` is open beside its
/// connection's socket. A reserve of 64 would go to refusals alone, just when
/// they are needed; 128 covers all of these.
const MIN_RESERVE: u64 = 128;

/// Of a larger limit, one descriptor in twenty is kept back. What the reserve
/// covers grows with the load (static files sent to many clients at once, a
/// flood refused at the cap), so a fixed number would be too small at a
/// million descriptors; 5% is 1,000 of 20,000 and 52,428 of 1,048,576 (a
/// common hard limit), room for those that costs few connections.
const RESERVE_DIVISOR: u64 = 20;

/// Raises the soft open-file limit to the hard one, as servers commonly do at
/// start: the soft limit (often 1,024) is a default for interactive programs,
/// while each connection needs a descriptor. Logs what it did; returns the
/// limit now in force, `None` when it cannot be read.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let (soft, hard) = match rlimit::Resource::NOFILE.get() {
            Ok(limits) => limits,
            Err(error) => {
                tracing::warn!(%error, "cannot read the open-file limit (RLIMIT_NOFILE)");
                return None;
            }
        };
        if soft >= hard {
            tracing::info!(
                open_file_limit = soft,
                "open-file limit (RLIMIT_NOFILE) is already at its hard limit"
            );
            return Some(soft);
        }
        // Not a plain setrlimit: on macOS the hard limit may be "unlimited"
        // while the kernel refuses a soft limit above kern.maxfilesperproc,
        // which this call takes into account.
        match rlimit::increase_nofile_limit(hard) {
            Ok(raised) => {
                tracing::info!(
                    from = soft,
                    to = raised,
                    hard_limit = hard,
                    "raised the open-file limit (RLIMIT_NOFILE)"
                );
                Some(raised)
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    open_file_limit = soft,
                    hard_limit = hard,
                    "cannot raise the open-file limit (RLIMIT_NOFILE); keeping it"
                );
                Some(soft)
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The soft open-file limit in force; `None` when it cannot be read or is unlimited.
pub(crate) fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::Resource::NOFILE
            .get_soft()
            .ok()
            .filter(|&soft| soft != rlimit::INFINITY)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Descriptors of `limit` kept back from connections. Never more than half:
/// with a limit too small for the reserve, half of it still goes to
/// connections, so the cap stays above 0 (which would mean no cap at all).
pub(crate) fn reserve(limit: u64) -> u64 {
    (limit / RESERVE_DIVISOR).max(MIN_RESERVE).min(limit / 2)
}

/// The open-connection cap and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionCap {
    /// `limits.max_connections` unset: the open-file limit less a reserve.
    FromLimit {
        cap: usize,
        limit: u64,
        reserve: u64,
    },
    /// Unset, with the limit unknown or unlimited.
    Fallback { cap: usize },
    /// Set in the configuration (0: no cap). `allowed` is what the open-file
    /// limit leaves room for, when the setting is above it.
    Configured {
        cap: usize,
        limit: Option<u64>,
        allowed: Option<usize>,
    },
}

impl ConnectionCap {
    /// The cap in force; 0 = none.
    pub(crate) fn value(&self) -> usize {
        match *self {
            ConnectionCap::FromLimit { cap, .. }
            | ConnectionCap::Fallback { cap }
            | ConnectionCap::Configured { cap, .. } => cap,
        }
    }

    /// Says at start what the cap is and why; a configured cap the
    /// descriptors cannot hold is a warning, since past the limit accepting
    /// fails instead of answering a 503.
    pub(crate) fn log(&self) {
        match *self {
            ConnectionCap::FromLimit {
                cap,
                limit,
                reserve,
            } => tracing::info!(
                max_connections = cap,
                open_file_limit = limit,
                reserve,
                "connection cap: the open-file limit less a reserve (limits.max_connections is not set)"
            ),
            ConnectionCap::Fallback { cap } => tracing::info!(
                max_connections = cap,
                "connection cap: a fixed default, the open-file limit being unknown or unlimited (limits.max_connections is not set)"
            ),
            ConnectionCap::Configured { cap: 0, limit, .. } => tracing::info!(
                open_file_limit = ?limit,
                "no connection cap (limits.max_connections = 0): only the open-file limit bounds connections"
            ),
            ConnectionCap::Configured {
                cap,
                limit: Some(limit),
                allowed: Some(allowed),
            } => tracing::warn!(
                max_connections = cap,
                open_file_limit = limit,
                allowed,
                "limits.max_connections is above what the open-file limit allows: past it, connections fail at accept instead of getting a 503; lower the key or raise the limit (LimitNOFILE=)"
            ),
            ConnectionCap::Configured { cap, limit, .. } => tracing::info!(
                max_connections = cap,
                open_file_limit = ?limit,
                "connection cap from limits.max_connections"
            ),
        }
    }
}

/// The cap for `configured` (`limits.max_connections`) under the open-file `limit`.
pub(crate) fn connection_cap(configured: Option<usize>, limit: Option<u64>) -> ConnectionCap {
    let allowed = limit.map(|limit| {
        let cap = limit - reserve(limit);
        (usize::try_from(cap).unwrap_or(usize::MAX).max(1), limit)
    });
    match (configured, allowed) {
        (None, Some((cap, limit))) => ConnectionCap::FromLimit {
            cap,
            limit,
            reserve: reserve(limit),
        },
        (None, None) => ConnectionCap::Fallback { cap: FALLBACK_CAP },
        (Some(cap), allowed) => ConnectionCap::Configured {
            cap,
            limit: allowed.map(|(_, limit)| limit),
            allowed: allowed
                .map(|(allowed, _)| allowed)
                .filter(|&allowed| cap > allowed),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_is_the_limit_less_a_reserve() {
        // 5% of a large limit, at least 128, at most half.
        assert_eq!(
            connection_cap(None, Some(20_000)),
            ConnectionCap::FromLimit {
                cap: 19_000,
                limit: 20_000,
                reserve: 1_000
            }
        );
        assert_eq!(connection_cap(None, Some(1_048_576)).value(), 996_148);
        assert_eq!(connection_cap(None, Some(1_024)).value(), 896);
        assert_eq!(connection_cap(None, Some(300)).value(), 172);
        assert_eq!(connection_cap(None, Some(100)).value(), 50);
        // Never 0, which would mean no cap.
        assert_eq!(connection_cap(None, Some(1)).value(), 1);
        assert_eq!(connection_cap(None, Some(0)).value(), 1);
        assert_eq!(
            connection_cap(None, None),
            ConnectionCap::Fallback { cap: 10_000 }
        );
    }

    #[test]
    fn a_configured_cap_wins_and_is_flagged_when_the_limit_cannot_hold_it() {
        assert_eq!(
            connection_cap(Some(500), Some(20_000)),
            ConnectionCap::Configured {
                cap: 500,
                limit: Some(20_000),
                allowed: None
            }
        );
        assert_eq!(
            connection_cap(Some(19_500), Some(20_000)),
            ConnectionCap::Configured {
                cap: 19_500,
                limit: Some(20_000),
                allowed: Some(19_000)
            }
        );
        // 0 is no cap, not a cap above the limit.
        let none = connection_cap(Some(0), Some(20_000));
        assert_eq!(none.value(), 0);
        assert!(matches!(
            none,
            ConnectionCap::Configured { allowed: None, .. }
        ));
        assert_eq!(connection_cap(Some(50_000), None).value(), 50_000);
    }
}
