//! A DHCP client for a container's interface on a container network without
//! `--container-network-ip-range`, as VIC's containers had: acquire (DISCOVER, OFFER, REQUEST,
//! ACK) before the container starts, renew at T1 (unicast to the server) and rebind at T2
//! (broadcast) while it runs, release when it stops.
//!
//! The exchanges run over a [`Transport`], so the state machine is tested against a fake
//! server; the real one ([`socket::open`]) is a UDP socket made inside the container's
//! network namespace. The lease is kept as JSON in the container's folder ([`Lease`]): the
//! endpoint writes it at acquisition, the container's monitor at each renewal, and inspect
//! reads it.

pub mod packet;
pub mod socket;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use packet::{Identity, Reply, ReplyKind, Request};

/// Why a DHCP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// No server offered an address in time.
    #[error("no DHCP server answered on {iface} within {secs} s")]
    NoOffer { iface: String, secs: u64 },
    /// A server offered, then did not acknowledge.
    #[error("the DHCP server {server} offered {address} on {iface} but did not acknowledge it")]
    NoAck {
        iface: String,
        address: Ipv4Addr,
        server: Ipv4Addr,
    },
    /// A server refused.
    #[error("the DHCP server {server} refused {address}: {message}")]
    Nak {
        address: Ipv4Addr,
        server: Ipv4Addr,
        message: String,
    },
    #[error("{0}")]
    Packet(String),
    #[error("{0}")]
    Io(String),
}

/// The client's ports.
pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;

/// How long to wait after each DISCOVER: about 10 s in all before giving up.
const DISCOVER_WAITS: [u64; 4] = [1, 2, 3, 4];
/// After each REQUEST.
const REQUEST_WAITS: [u64; 3] = [1, 2, 3];

/// Sends and receives DHCP packets.
pub trait Transport {
    /// Sends `packet` to `to` (255.255.255.255 for a broadcast).
    fn send(&mut self, packet: &[u8], to: SocketAddrV4) -> Result<(), DhcpError>;
    /// The next packet that arrives before `until`; `None` once it passed.
    fn recv(&mut self, until: Instant) -> Result<Option<Vec<u8>>, DhcpError>;
}

/// A lease, as kept in the container's folder (`dhcp-lease.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The container's interface it is for.
    pub interface: String,
    /// The interface's MAC (the client's identity to the server).
    pub mac: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub server: Ipv4Addr,
    /// Seconds.
    pub lease_time: u32,
    /// T1 and T2, seconds after `obtained`.
    pub renew_after: u32,
    pub rebind_after: u32,
    /// When the server last acknowledged it, RFC 3339 and Unix seconds.
    pub obtained_at: String,
    pub obtained: i64,
}

impl Lease {
    /// The lease an ACK gives, obtained at Unix time `now`. T1 and T2 default to 1/2 and 7/8
    /// of the lease time (RFC 2131 4.4.5).
    pub fn from_ack(ack: &Reply, iface: &str, who: &Identity, now: i64) -> Self {
        let lease_time = ack.lease_secs.unwrap_or(u32::MAX);
        let prefix = ack
            .mask
            .map_or(24, |m| u32::from(m).leading_ones().min(32) as u8);
        Self {
            interface: iface.to_owned(),
            mac: who
                .mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            address: ack.address,
            prefix,
            router: ack.router,
            dns: ack.dns.clone(),
            server: ack.server,
            lease_time,
            renew_after: ack.t1_secs.unwrap_or(lease_time / 2),
            rebind_after: ack
                .t2_secs
                .unwrap_or((u64::from(lease_time) * 7 / 8) as u32),
            obtained_at: vic_core::time::unix_rfc3339(now).unwrap_or_default(),
            obtained: now,
        }
    }

    /// When it expires, RFC 3339.
    pub fn expires_at(&self) -> String {
        vic_core::time::unix_rfc3339(self.obtained + i64::from(self.lease_time)).unwrap_or_default()
    }

    /// The subnet it is on.
    pub fn subnet(&self) -> ipnet::Ipv4Net {
        ipnet::Ipv4Net::new(self.address, self.prefix)
            .map(|n| n.trunc())
            .unwrap_or_default()
    }

    /// The lease recorded at `path`, if any.
    pub fn read(path: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Records it at `path` (replaced whole: a reader never sees half a lease).
    pub fn write(&self, path: &Path) -> Result<(), DhcpError> {
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| DhcpError::Io(e.to_string()))?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                DhcpError::Io(format!(
                    "cannot record the lease at {}: {e}",
                    path.display()
                ))
            })
    }

    /// What its holder should do at Unix time `now`.
    pub fn step(&self, now: i64) -> Step {
        let at = |secs: u32| self.obtained + i64::from(secs);
        if now >= at(self.lease_time) {
            Step::Expired
        } else if now >= at(self.rebind_after) {
            Step::Rebind
        } else if now >= at(self.renew_after) {
            Step::Renew
        } else {
            Step::WaitUntil(at(self.renew_after))
        }
    }
}

/// What a lease's holder does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing until this Unix time (T1).
    WaitUntil(i64),
    /// Past T1: ask its server.
    Renew,
    /// Past T2: ask any server.
    Rebind,
    /// The address is no longer ours: start over.
    Expired,
}

/// Now, Unix seconds.
pub fn now() -> i64 {
    (vic_core::time::now_nanos() / 1_000_000_000) as i64
}

fn broadcast() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT)
}

/// Sends `req` to `to` and waits, resending after each of `waits` seconds, for a reply of one
/// of `kinds`; `None` if none came.
fn exchange(
    t: &mut dyn Transport,
    who: &Identity,
    req: Request,
    to: SocketAddrV4,
    waits: &[u64],
    kinds: &[ReplyKind],
) -> Result<Option<Reply>, DhcpError> {
    let xid: u32 = rand_xid();
    let bytes = packet::build(req, who, xid)?;
    for wait in waits {
        t.send(&bytes, to)?;
        let until = Instant::now() + Duration::from_secs(*wait);
        while let Some(p) = t.recv(until)? {
            if let Some(r) = packet::parse(&p, who, xid).filter(|r| kinds.contains(&r.kind)) {
                return Ok(Some(r));
            }
        }
    }
    Ok(None)
}

/// A transaction id: unpredictable enough that another client's replies are not taken.
fn rand_xid() -> u32 {
    let n = vic_core::time::now_nanos();
    (n as u32) ^ ((n >> 32) as u32) ^ std::process::id().rotate_left(16)
}

/// Acquires a lease for interface `iface` (hinting at the address it had, `hint`).
pub fn acquire(
    t: &mut dyn Transport,
    who: &Identity,
    iface: &str,
    hint: Option<Ipv4Addr>,
) -> Result<Lease, DhcpError> {
    let Some(offer) = exchange(
        t,
        who,
        Request::Discover { hint },
        broadcast(),
        &DISCOVER_WAITS,
        &[ReplyKind::Offer],
    )?
    else {
        return Err(DhcpError::NoOffer {
            iface: iface.to_owned(),
            secs: DISCOVER_WAITS.iter().sum(),
        });
    };
    let select = Request::Select {
        address: offer.address,
        server: offer.server,
    };
    match exchange(
        t,
        who,
        select,
        broadcast(),
        &REQUEST_WAITS,
        &[ReplyKind::Ack, ReplyKind::Nak],
    )? {
        Some(ack) if ack.kind == ReplyKind::Ack => {
            tracing::info!(%iface, address = %ack.address, server = %ack.server, "DHCP lease acquired");
            Ok(Lease::from_ack(&ack, iface, who, now()))
        }
        Some(nak) => Err(DhcpError::Nak {
            address: offer.address,
            server: offer.server,
            message: nak.message.unwrap_or_default(),
        }),
        None => Err(DhcpError::NoAck {
            iface: iface.to_owned(),
            address: offer.address,
            server: offer.server,
        }),
    }
}

/// Extends `lease`: from its server (`rebinding` false, unicast) or any (broadcast). The new
/// lease, or `None` when no server answered (try again later, until it expires).
pub fn extend(
    t: &mut dyn Transport,
    lease: &Lease,
    rebinding: bool,
) -> Result<Option<Lease>, DhcpError> {
    let who = Identity::parse_mac(&lease.mac)?;
    let to = if rebinding {
        broadcast()
    } else {
        SocketAddrV4::new(lease.server, SERVER_PORT)
    };
    let req = Request::Extend {
        address: lease.address,
    };
    match exchange(
        t,
        &who,
        req,
        to,
        &REQUEST_WAITS,
        &[ReplyKind::Ack, ReplyKind::Nak],
    )? {
        Some(ack) if ack.kind == ReplyKind::Ack => {
            Ok(Some(Lease::from_ack(&ack, &lease.interface, &who, now())))
        }
        Some(nak) => Err(DhcpError::Nak {
            address: lease.address,
            server: nak.server,
            message: nak.message.unwrap_or_default(),
        }),
        None => Ok(None),
    }
}

/// Gives `lease` back to its server (no answer comes).
pub fn release(t: &mut dyn Transport, lease: &Lease) -> Result<(), DhcpError> {
    let who = Identity::parse_mac(&lease.mac)?;
    let bytes = packet::build(
        Request::Release {
            address: lease.address,
            server: lease.server,
        },
        &who,
        rand_xid(),
    )?;
    t.send(&bytes, SocketAddrV4::new(lease.server, SERVER_PORT))
}

/// A stable MAC for a container's interface on a DHCP network, from its ID: the server knows
/// the container again across restarts and gives it its address back. Locally administered
/// (`0a:`), apart from the `02:42:` addresses of statically addressed containers.
pub fn mac_for_id(id: &str) -> String {
    let hex: String = id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .chain(std::iter::repeat('0'))
        .take(10)
        .collect();
    let mut out = String::from("0a");
    for pair in hex.as_bytes().chunks(2) {
        out.push(':');
        out.push_str(&String::from_utf8_lossy(pair).to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests;
