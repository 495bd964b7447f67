//! Which peers may speak for a client (`server.trusted_proxies`), and the
//! client address behind them: the nearest forwarded hop that is not itself a
//! trusted proxy. Headers from any other peer are not read at all.

use super::forwarded::{self, ForwardedError, Hop};
use crate::config::ConfigError;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The addresses and networks of `server.trusted_proxies`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

/// Whose address a request's client is, and how that was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAddr {
    /// The peer is not a trusted proxy: it is the client, whatever it claims.
    Direct(SocketAddr),
    /// A trusted proxy named the client in `header`. The port is 0 when the
    /// proxy gave none.
    Forwarded {
        client: SocketAddr,
        proxy: SocketAddr,
        header: &'static str,
    },
    /// A trusted proxy whose headers name no client (missing, unreadable, or
    /// not agreeing with each other): the proxy itself stands for the client.
    Unnamed {
        proxy: SocketAddr,
        reason: Unresolved,
    },
}

impl ClientAddr {
    /// The client's address, as logs, sessions, limits and interceptors see it.
    pub fn client(&self) -> SocketAddr {
        match *self {
            ClientAddr::Direct(addr) => addr,
            ClientAddr::Forwarded { client, .. } => client,
            ClientAddr::Unnamed { proxy, .. } => proxy,
        }
    }

    /// The request came through a trusted proxy, whose connections are not
    /// counted per address when accepted.
    pub fn through_proxy(&self) -> bool {
        !matches!(self, ClientAddr::Direct(_))
    }
}

/// Why a trusted proxy's request names no client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    #[error("no Forwarded or X-Forwarded-For header")]
    NoHeader,
    #[error("{header}: {error}")]
    Unreadable {
        header: &'static str,
        error: ForwardedError,
    },
    #[error("{header}: the nearest hop that is not a trusted proxy is unnamed")]
    UnnamedHop { header: &'static str },
    #[error("Forwarded names {forwarded} but X-Forwarded-For names {x_forwarded_for}")]
    Disagree {
        forwarded: IpAddr,
        x_forwarded_for: IpAddr,
    },
}

const FORWARDED: &str = "Forwarded";
const X_FORWARDED_FOR: &str = "X-Forwarded-For";

impl TrustedProxies {
    /// From `server.trusted_proxies`: IP addresses (`10.0.0.1`, `::1`) and
    /// CIDR networks (`10.0.0.0/8`, `fd00::/8`).
    pub fn new(entries: &[String]) -> Result<TrustedProxies, ConfigError> {
        let networks = entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|network| network.trunc())
                    .map_err(|_| {
                        ConfigError::invalid(
                            "server.trusted_proxies",
                            format!(
                                "{entry:?} is not an IP address or a CIDR network (such as 10.0.0.0/8)"
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { networks })
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        self.networks.iter().any(|network| network.contains(&ip))
    }

    /// The client of a request from `peer` that carried these `Forwarded`
    /// and `X-Forwarded-For` header lines.
    ///
    /// Each header is walked from its nearest hop leftwards, past the hops
    /// that are trusted proxies themselves; the first other hop is the client.
    /// When both headers are present they must name the same client: a proxy
    /// may append to one and pass a client's own copy of the other through
    /// unchanged (nginx's `$proxy_add_x_forwarded_for` leaves `Forwarded`
    /// alone), and believing either one alone would let that client choose
    /// its address.
    pub fn client<'a>(
        &self,
        peer: SocketAddr,
        forwarded: impl IntoIterator<Item = &'a str>,
        x_forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> ClientAddr {
        if !self.trusts(peer.ip()) {
            return ClientAddr::Direct(peer);
        }
        let unnamed = |reason| ClientAddr::Unnamed {
            proxy: peer,
            reason,
        };
        let by_forwarded = match self.walk(FORWARDED, forwarded::forwarded(forwarded)) {
            Ok(client) => client,
            Err(reason) => return unnamed(reason),
        };
        let by_x_forwarded_for =
            match self.walk(X_FORWARDED_FOR, forwarded::x_forwarded_for(x_forwarded_for)) {
                Ok(client) => client,
                Err(reason) => return unnamed(reason),
            };
        let (client, header) = match (by_forwarded, by_x_forwarded_for) {
            (None, None) => return unnamed(Unresolved::NoHeader),
            (Some(client), None) => (client, FORWARDED),
            (None, Some(client)) => (client, X_FORWARDED_FOR),
            (Some(forwarded), Some(x_forwarded_for)) if forwarded.ip() == x_forwarded_for.ip() => {
                // The same client; keep the port if either header gave one.
                if forwarded.port() != 0 || x_forwarded_for.port() == 0 {
                    (forwarded, FORWARDED)
                } else {
                    (x_forwarded_for, X_FORWARDED_FOR)
                }
            }
            (Some(forwarded), Some(x_forwarded_for)) => {
                return unnamed(Unresolved::Disagree {
                    forwarded: forwarded.ip(),
                    x_forwarded_for: x_forwarded_for.ip(),
                });
            }
        };
        ClientAddr::Forwarded {
            client,
            proxy: peer,
            header,
        }
    }

    /// The client one header names: `None` when it has no hops.
    fn walk(
        &self,
        header: &'static str,
        hops: Vec<Result<Hop, ForwardedError>>,
    ) -> Result<Option<SocketAddr>, Unresolved> {
        let mut furthest = None;
        for hop in hops.into_iter().rev() {
            match hop {
                Ok(Hop::Address(ip, port)) => {
                    let addr = SocketAddr::new(ip, port.unwrap_or(0));
                    if !self.trusts(ip) {
                        return Ok(Some(addr));
                    }
                    furthest = Some(addr);
                }
                Ok(Hop::Unnamed) => return Err(Unresolved::UnnamedHop { header }),
                Err(error) => return Err(Unresolved::Unreadable { header, error }),
            }
        }
        // Every hop a trusted proxy: the request began at the furthest one.
        Ok(furthest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        TrustedProxies::new(&entries).unwrap()
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    const NONE: [&str; 0] = [];

    #[test]
    fn entries_are_addresses_or_networks_and_others_name_the_key() {
        let trusted = proxies(&["127.0.0.1", "10.0.0.0/8", " fd00::/8 ", "192.168.1.7/16"]);
        assert!(trusted.trusts("127.0.0.1".parse().unwrap()));
        assert!(!trusted.trusts("127.0.0.2".parse().unwrap()));
        assert!(trusted.trusts("10.200.3.4".parse().unwrap()));
        assert!(trusted.trusts("fd12::1".parse().unwrap()));
        assert!(trusted.trusts("192.168.200.1".parse().unwrap()));
        assert!(trusted.trusts("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!trusted.trusts("::1".parse().unwrap()));
        for bad in ["localhost", "10.0.0.0/33", "", "10.0.0.0/8/8", "1.2.3.4:80"] {
            let error = TrustedProxies::new(&[bad.to_owned()]).unwrap_err();
            assert!(
                error.to_string().starts_with("server.trusted_proxies: "),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = addr("127.0.0.1:5000");
        assert_eq!(
            trusted.client(peer, ["for=1.2.3.4"], ["5.6.7.8"]),
            ClientAddr::Direct(peer)
        );
        assert_eq!(proxies(&[]).client(peer, NONE, ["1.2.3.4"]).client(), peer);
    }

    #[test]
    fn the_client_is_the_nearest_hop_that_is_not_a_trusted_proxy() {
        let trusted = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = addr("127.0.0.1:5000");
        let forwarded = |client: &str, header| ClientAddr::Forwarded {
            client: addr(client),
            proxy: peer,
            header,
        };
        assert_eq!(
            trusted.client(peer, NONE, ["1.2.3.4, 127.0.0.1"]),
            forwarded("1.2.3.4:0", X_FORWARDED_FOR)
        );
        // Entries further left were written by the client: never reached.
        assert_eq!(
            trusted.client(peer, NONE, ["6.6.6.6, garbage", "1.2.3.4, 10.1.1.1"]),
            forwarded("1.2.3.4:0", X_FORWARDED_FOR)
        );
        assert_eq!(
            trusted.client(peer, [r#"for="[2001:db8::1]:4711""#], NONE),
            forwarded("[2001:db8::1]:4711", FORWARDED)
        );
        // Only trusted hops: the furthest one is where the request began.
        assert_eq!(
            trusted.client(peer, NONE, ["10.0.0.5, 127.0.0.1"]),
            forwarded("10.0.0.5:0", X_FORWARDED_FOR)
        );
        // Both headers, the same client: the port comes from whichever has one.
        assert_eq!(
            trusted.client(peer, ["for=1.2.3.4"], ["1.2.3.4:99"]),
            forwarded("1.2.3.4:99", X_FORWARDED_FOR)
        );
    }

    #[test]
    fn headers_that_name_no_client_leave_the_proxy_as_the_client() {
        let trusted = proxies(&["127.0.0.1"]);
        let peer = addr("127.0.0.1:5000");
        let reason = |forwarded: &[&str], x_forwarded_for: &[&str]| match trusted.client(
            peer,
            forwarded.iter().copied(),
            x_forwarded_for.iter().copied(),
        ) {
            ClientAddr::Unnamed { proxy, reason } => {
                assert_eq!(proxy, peer);
                reason
            }
            other => panic!("{forwarded:?} {x_forwarded_for:?}: {other:?}"),
        };
        assert_eq!(reason(&[], &[]), Unresolved::NoHeader);
        assert_eq!(reason(&[""], &[" , "]), Unresolved::NoHeader);
        assert!(matches!(
            reason(&[], &["1.2.3.4, garbage"]),
            Unresolved::Unreadable {
                header: X_FORWARDED_FOR,
                ..
            }
        ));
        assert!(matches!(
            reason(&["for=\"1.2.3.4"], &[]),
            Unresolved::Unreadable {
                header: FORWARDED,
                ..
            }
        ));
        assert_eq!(
            reason(&["for=unknown"], &[]),
            Unresolved::UnnamedHop { header: FORWARDED }
        );
        // A proxy that appends to X-Forwarded-For and passes the client's own
        // Forwarded through: the client does not get to choose.
        assert_eq!(
            reason(&["for=6.6.6.6"], &["1.2.3.4"]),
            Unresolved::Disagree {
                forwarded: "6.6.6.6".parse().unwrap(),
                x_forwarded_for: "1.2.3.4".parse().unwrap()
            }
        );
        // A broken header the client sent spoils the other one too.
        assert!(matches!(
            reason(&["for=nonsense"], &["1.2.3.4"]),
            Unresolved::Unreadable {
                header: FORWARDED,
                ..
            }
        ));
    }
}
