//! Connection admission: caps on open TCP connections (in all and per remote
//! IP) and on connections still waiting for their first HTTP request. The
//! listener asks before serving a socket; the [`Ticket`] it gets back gives the
//! place up when the socket closes. A trusted proxy's connections carry many
//! clients, so they are counted per address only at their handshake, under the
//! client address the proxy forwarded ([`Admission::admit_client`]).

use super::proxies::TrustedProxies;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The configured caps; 0 means none.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_total: usize,
    pub max_per_ip: usize,
    pub max_pending: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("too many connections: the server holds its maximum of {0} (limits.max_connections)")]
    Total(usize),
    #[error("too many connections from this address: at most {0} (limits.max_connections_per_ip)")]
    PerIp(usize),
    #[error(
        "too many connections waiting to send their request: at most {0} (limits.max_pending_handshakes)"
    )]
    Pending(usize),
}

#[derive(Debug)]
pub struct Admission {
    /// Replaced by a reload; connections already admitted are never cut for it.
    limits: arc_swap::ArcSwap<ConnectionLimits>,
    proxies: Arc<TrustedProxies>,
    open: AtomicUsize,
    pending: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Refusals by cap, in the order of [`Refused::REASONS`].
    refused: [AtomicU64; 3],
}

impl Refused {
    /// The metric names of the caps (`stomphub_refusals_total{reason}`).
    pub const REASONS: [&'static str; 3] = [
        "max-connections",
        "max-connections-per-ip",
        "max-pending-handshakes",
    ];

    fn index(&self) -> usize {
        match self {
            Refused::Total(_) => 0,
            Refused::PerIp(_) => 1,
            Refused::Pending(_) => 2,
        }
    }
}

impl Admission {
    pub fn new(limits: ConnectionLimits, proxies: Arc<TrustedProxies>) -> Arc<Admission> {
        Arc::new(Admission {
            limits: arc_swap::ArcSwap::from_pointee(limits),
            proxies,
            open: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            refused: Default::default(),
        })
    }

    /// The caps for connections admitted from now on.
    pub fn set_limits(&self, limits: ConnectionLimits) {
        self.limits.store(Arc::new(limits));
    }

    /// How many connections each cap refused.
    pub fn refusals(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Refused::REASONS
            .into_iter()
            .zip(&self.refused)
            .map(|(reason, count)| (reason, count.load(Ordering::Relaxed)))
    }

    fn refuse(&self, refused: Refused) -> Refused {
        self.refused[refused.index()].fetch_add(1, Ordering::Relaxed);
        refused
    }

    fn per_ip(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Counter updates only: a poisoned map is still consistent.
        self.per_ip.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for a new connection from `ip`, or says which cap refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refused> {
        let limits = **self.limits.load();
        // The peer's address cannot tell a proxy's clients apart: they are
        // counted at their handshake instead.
        let counted = (!self.proxies.trusts(ip)).then(|| ip.to_canonical());
        let mut per_ip = self.per_ip();
        if limits.max_total > 0 && self.open.load(Ordering::Relaxed) >= limits.max_total {
            return Err(self.refuse(Refused::Total(limits.max_total)));
        }
        if limits.max_pending > 0 && self.pending.load(Ordering::Relaxed) >= limits.max_pending {
            return Err(self.refuse(Refused::Pending(limits.max_pending)));
        }
        if let Some(ip) = counted {
            self.take_per_ip(&mut per_ip, ip)
                .map_err(|refused| self.refuse(refused))?;
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            admission: self.clone(),
            ip: counted,
            handshake: Arc::new(HandshakeFlag {
                admission: self.clone(),
                pending: AtomicBool::new(true),
            }),
        })
    }

    /// Takes the per-address place of a client that a trusted proxy forwarded
    /// for, at its handshake; the connection itself was not counted per
    /// address when accepted.
    pub fn admit_client(self: &Arc<Self>, ip: IpAddr) -> Result<ClientPlace, Refused> {
        let ip = ip.to_canonical();
        self.take_per_ip(&mut self.per_ip(), ip)
            .map_err(|refused| self.refuse(refused))?;
        Ok(ClientPlace {
            admission: self.clone(),
            ip,
        })
    }

    fn take_per_ip(&self, per_ip: &mut HashMap<IpAddr, usize>, ip: IpAddr) -> Result<(), Refused> {
        let max = self.limits.load().max_per_ip;
        let from_ip = per_ip.entry(ip).or_insert(0);
        if max > 0 && *from_ip >= max {
            return Err(Refused::PerIp(max));
        }
        *from_ip += 1;
        Ok(())
    }

    fn release_per_ip(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip();
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// The cap on one client address's connections (or sessions); 0 = none.
    pub fn max_per_ip(&self) -> usize {
        self.limits.load().max_per_ip
    }

    /// The cap on open TCP connections in force; 0 = none.
    pub fn max_total(&self) -> usize {
        self.limits.load().max_total
    }

    /// Open TCP connections.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections that have not completed an HTTP request yet.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Distinct remote addresses with open connections (the map must not keep closed ones).
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.per_ip().len()
    }
}

/// Marks the end of a connection's handshake phase; shared with its requests.
#[derive(Debug)]
pub struct HandshakeFlag {
    admission: Arc<Admission>,
    pending: AtomicBool,
}

impl HandshakeFlag {
    /// The connection has sent a complete request; it no longer counts as pending.
    pub fn request_seen(&self) {
        if self.pending.swap(false, Ordering::AcqRel) {
            self.admission.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }
}

/// One admitted connection's place; released on drop.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    /// The address counted against the per-address cap; none for a trusted proxy.
    ip: Option<IpAddr>,
    handshake: Arc<HandshakeFlag>,
}

impl Ticket {
    pub fn handshake(&self) -> &Arc<HandshakeFlag> {
        &self.handshake
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.handshake.request_seen();
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.ip {
            self.admission.release_per_ip(ip);
        }
    }
}

/// The per-address place of a client behind a trusted proxy; released on drop.
#[derive(Debug)]
pub struct ClientPlace {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        self.admission.release_per_ip(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn each_cap_refuses_with_its_key_and_places_come_back() {
        let admission = Admission::new(
            ConnectionLimits {
                max_total: 3,
                max_per_ip: 2,
                max_pending: 10,
            },
            Arc::default(),
        );
        let a = admission.admit(ip(1)).unwrap();
        let _b = admission.admit(ip(1)).unwrap();
        let refused = admission.admit(ip(1)).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("limits.max_connections_per_ip")
        );
        let _c = admission.admit(ip(2)).unwrap();
        let refused = admission.admit(ip(3)).unwrap_err();
        assert!(refused.to_string().contains("limits.max_connections)"));
        drop(a);
        assert_eq!(admission.open(), 2);
        assert!(admission.admit(ip(1)).is_ok());
    }

    #[test]
    fn pending_handshakes_are_capped_until_a_request_arrives() {
        let admission = Admission::new(
            ConnectionLimits {
                max_total: 0,
                max_per_ip: 0,
                max_pending: 2,
            },
            Arc::default(),
        );
        let a = admission.admit(ip(1)).unwrap();
        let b = admission.admit(ip(1)).unwrap();
        assert_eq!(admission.admit(ip(1)).unwrap_err(), Refused::Pending(2));
        a.handshake().request_seen();
        a.handshake().request_seen();
        assert_eq!(admission.pending(), 1);
        let _c = admission.admit(ip(1)).unwrap();
        drop(b);
        assert_eq!(admission.pending(), 1);
        assert_eq!(admission.open(), 2);
        drop(a);
        assert_eq!(admission.addresses(), 1);
    }

    #[test]
    fn a_trusted_proxy_is_counted_per_client_at_the_handshake() {
        let proxies = TrustedProxies::new(&["127.0.0.1".to_owned()]).unwrap();
        let admission = Admission::new(
            ConnectionLimits {
                max_total: 10,
                max_per_ip: 2,
                max_pending: 10,
            },
            Arc::new(proxies),
        );
        // The proxy's own connections are past the per-address cap...
        let proxied: Vec<Ticket> = (0..3).map(|_| admission.admit(ip(1)).unwrap()).collect();
        assert_eq!(admission.addresses(), 0);
        // ... and each forwarded client has its own, shared with its direct connections.
        let client = IpAddr::from([192, 0, 2, 7]);
        let first = admission.admit_client(client).unwrap();
        let direct = admission.admit(client).unwrap();
        assert_eq!(
            admission.admit_client(client).unwrap_err(),
            Refused::PerIp(2)
        );
        let other = admission
            .admit_client(IpAddr::from([192, 0, 2, 8]))
            .unwrap();
        drop(first);
        let again = admission.admit_client(client).unwrap();
        // Other peers are still counted when accepted.
        let a = admission.admit(ip(2)).unwrap();
        let b = admission.admit(ip(2)).unwrap();
        assert_eq!(admission.admit(ip(2)).unwrap_err(), Refused::PerIp(2));
        drop(proxied);
        assert_eq!(admission.open(), 3);
        drop((direct, other, again, a, b));
        assert_eq!(admission.addresses(), 0);
    }
}
