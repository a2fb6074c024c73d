//! The host ports a container's monitor holds ([`HeldPort`]): part of the monitor's protocol
//! (`--hold=PROTO:IP:PORT`, see [`crate::monitor::MonitorConfig`]).

use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, OwnedFd};

/// A host port a monitor keeps bound for as long as its container runs. A published port is
/// only a DNAT rule: without a socket on it, any program of the host could bind the same
/// address and port later without an error and then lose its own connections to the
/// container, and the port would look free to every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldPort {
    /// UDP (else TCP).
    pub udp: bool,
    /// The host address (`0.0.0.0`: every address) and port.
    pub addr: SocketAddrV4,
}

impl HeldPort {
    pub(crate) fn proto(&self) -> &'static str {
        if self.udp { "udp" } else { "tcp" }
    }

    /// `PROTO:IP:PORT`, as `--hold=` takes it.
    pub(crate) fn to_arg(self) -> String {
        format!("{}:{}", self.proto(), self.addr)
    }

    /// Reads [`HeldPort::to_arg`]'s form.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (proto, addr) = s.split_once(':')?;
        let udp = match proto {
            "tcp" => false,
            "udp" => true,
            _ => return None,
        };
        Some(Self {
            udp,
            addr: addr.parse().ok()?,
        })
    }

    /// Binds the port: TCP without listening (nothing is accepted; the DNAT rule takes the
    /// traffic before any socket would), UDP bound. Never `SO_REUSEADDR`, so no other socket
    /// can share it; close-on-exec, so no runtime or container process inherits a socket of
    /// the host's namespace.
    pub fn bind(&self) -> std::io::Result<OwnedFd> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, socket};
        let kind = if self.udp {
            SockType::Datagram
        } else {
            SockType::Stream
        };
        let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None)?;
        bind(fd.as_raw_fd(), &SockaddrIn::from(self.addr))?;
        Ok(fd)
    }
}

impl std::fmt::Display for HeldPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.addr.ip();
        write!(f, "port {}/{} on ", self.addr.port(), self.proto())?;
        if ip.is_unspecified() {
            write!(f, "every address")
        } else {
            write!(f, "{ip}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_port_cannot_be_bound_again_until_released() {
        for udp in [false, true] {
            let probe = HeldPort {
                udp,
                addr: "127.0.0.1:0".parse().unwrap(),
            };
            let first = probe.bind().unwrap();
            let port =
                nix::sys::socket::getsockname::<nix::sys::socket::SockaddrIn>(first.as_raw_fd())
                    .unwrap()
                    .port();
            let held = HeldPort {
                udp,
                addr: SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port),
            };
            // Not even a socket that asks to share the address (std's listeners do) gets it,
            // nor one on every address.
            let e = held.bind().unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{held}");
            if udp {
                assert!(std::net::UdpSocket::bind(("0.0.0.0", port)).is_err());
            } else {
                assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
                assert!(std::net::TcpListener::bind(("0.0.0.0", port)).is_err());
            }
            drop(first);
            drop(held.bind().unwrap());
            assert_eq!(
                held.to_string(),
                format!("port {port}/{} on 127.0.0.1", held.proto())
            );
        }
    }
}
