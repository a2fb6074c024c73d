//! The real [`Transport`]: a UDP socket on port 68 made inside the container's network
//! namespace, bound to its interface, allowed to broadcast. And [`hold`], the loop a
//! container's monitor runs to keep the lease while the container runs.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{setsockopt, sockopt};

use super::{DhcpError, Lease, Step, Transport};

/// A UDP socket for DHCP in a container's namespace.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
}

/// Opens the client's socket for interface `iface` in the namespace pinned at `netns`. A
/// socket belongs to the namespace it was made in for its whole life, so it is made on a
/// thread of its own that enters the namespace (as `netns::create` does) and handed back;
/// the caller's threads stay where they are.
pub fn open(netns: &Path, iface: &str) -> Result<UdpTransport, DhcpError> {
    let (netns, iface) = (netns.to_owned(), iface.to_owned());
    std::thread::spawn(move || -> Result<UdpSocket, DhcpError> {
        let ns = std::fs::File::open(&netns)
            .map_err(|e| DhcpError::Io(format!("cannot open {}: {e}", netns.display())))?;
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| DhcpError::Io(format!("cannot enter {}: {e}", netns.display())))?;
        let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, super::CLIENT_PORT))
            .map_err(|e| DhcpError::Io(format!("cannot bind the DHCP client's port 68: {e}")))?;
        // Bound to the interface: broadcasts leave through it (the namespace may have others)
        // and only its replies arrive.
        setsockopt(
            &socket,
            sockopt::BindToDevice,
            &std::ffi::OsString::from(&iface),
        )
        .map_err(|e| DhcpError::Io(format!("cannot bind the DHCP socket to {iface}: {e}")))?;
        socket
            .set_broadcast(true)
            .map_err(|e| DhcpError::Io(format!("cannot allow broadcasts: {e}")))?;
        Ok(socket)
    })
    .join()
    .map_err(|_| DhcpError::Io("the DHCP socket's thread failed".into()))?
    .map(|socket| UdpTransport { socket })
}

impl Transport for UdpTransport {
    fn send(&mut self, packet: &[u8], to: SocketAddrV4) -> Result<(), DhcpError> {
        self.socket
            .send_to(packet, to)
            .map(drop)
            .map_err(|e| DhcpError::Io(format!("cannot send to {to}: {e}")))
    }

    fn recv(&mut self, until: Instant) -> Result<Option<Vec<u8>>, DhcpError> {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        self.socket
            .set_read_timeout(Some(left))
            .map_err(|e| DhcpError::Io(e.to_string()))?;
        let mut buf = vec![0u8; 1500];
        match self.socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(Some(Vec::new())),
            Err(e) => Err(DhcpError::Io(format!("cannot receive: {e}"))),
        }
    }
}

/// Where a lease is held: the container's namespace and the lease file.
#[derive(Debug, Clone)]
pub struct Holding {
    pub netns: PathBuf,
    pub lease_file: PathBuf,
}

/// Keeps the lease recorded at `h.lease_file` until `stop` says so (or its sender goes):
/// renews at T1, rebinds at T2, acquires anew once it expired or a server refused it (the
/// interface is then readdressed), and records every new lease. Then releases it, takes the
/// address off the interface and removes the file: the container stopped.
pub fn hold(h: &Holding, stop: &Receiver<()>) {
    let Some(mut lease) = Lease::read(&h.lease_file) else {
        tracing::warn!(file = %h.lease_file.display(), "no DHCP lease to keep");
        return;
    };
    // Seconds between attempts once renewing failed (bounded by the time left).
    const RETRY: i64 = 10;
    loop {
        let now = super::now();
        let wait = match lease.step(now) {
            Step::WaitUntil(t1) => (t1 - now).max(1),
            step => {
                match keep_once(h, &lease, step) {
                    Ok(Some(new)) => {
                        if let Err(e) = new.write(&h.lease_file) {
                            tracing::warn!(error = %e, "DHCP lease not recorded");
                        }
                        tracing::info!(address = %new.address, expires = %new.expires_at(), "DHCP lease renewed");
                        lease = new;
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, address = %lease.address, "DHCP renewal failed")
                    }
                }
                RETRY.min((lease.obtained + i64::from(lease.lease_time) - now).max(1))
            }
        };
        match stop.recv_timeout(Duration::from_secs(wait as u64)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let released =
        open(&h.netns, &lease.interface).and_then(|mut t| super::release(&mut t, &lease));
    match released {
        Ok(()) => {
            tracing::info!(address = %lease.address, server = %lease.server, "DHCP lease released")
        }
        Err(e) => tracing::warn!(error = %e, "DHCP lease not released"),
    }
    if let Err(e) = crate::link::unaddress(&h.netns, &lease.interface) {
        tracing::warn!(error = %e, "address left on the interface");
    }
    let _ = std::fs::remove_file(&h.lease_file);
}

/// One renewal (`Renew`), rebinding (`Rebind`) or new acquisition (`Expired`, or after a
/// refusal): the new lease, `None` when nobody answered.
fn keep_once(h: &Holding, lease: &Lease, step: Step) -> Result<Option<Lease>, DhcpError> {
    let mut t = open(&h.netns, &lease.interface)?;
    let extended = match step {
        Step::Renew => super::extend(&mut t, lease, false),
        Step::Rebind => super::extend(&mut t, lease, true),
        _ => Err(DhcpError::Packet("expired".into())),
    };
    match extended {
        Ok(found) => Ok(found),
        Err(DhcpError::Io(e)) => Err(DhcpError::Io(e)),
        // Refused or expired: the address is gone; start over with a new one.
        Err(_) => {
            let who = super::Identity::parse_mac(&lease.mac)?;
            let new = super::acquire(&mut t, &who, &lease.interface, Some(lease.address))?;
            // The same address back leaves the interface (and any route through the
            // network's configured gateway) as it is.
            if (new.address, new.prefix) != (lease.address, lease.prefix) {
                crate::link::address(
                    &h.netns,
                    &lease.interface,
                    new.address,
                    new.prefix,
                    new.router,
                )
                .map_err(|e| DhcpError::Io(e.to_string()))?;
            }
            Ok(Some(new))
        }
    }
}
