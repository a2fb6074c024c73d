//! The sockets of a container's embedded name server: UDP and TCP on 127.0.0.11:53 inside the
//! container's network namespace, run by the container's monitor (so names keep resolving
//! while the endpoint is down), on threads that entered that namespace and never leave it.
//!
//! Where it listens: 127.0.0.11 is in the namespace's own loopback range, reachable by the
//! container's processes only (the kernel drops packets for 127/8 that arrive on any other
//! interface, and the host's namespace has no such socket). It binds before the container's
//! first process exists, without `SO_REUSEPORT`, so nothing in the container can take the
//! address from it.
//!
//! Where it forwards: from the container's namespace too, over UDP with a timeout, to the
//! upstream servers the endpoint chose at start (`--dns`, else the host's, the same the
//! container would have had in its `resolv.conf`), never a loopback one: a question forwarded
//! from inside the namespace goes where the container's own packets go, through its firewall
//! and the VCH's NAT (an `--internal` network gets `SERVFAIL`), and cannot reach a resolver on
//! the host's loopback (systemd-resolved's 127.0.0.53). The engine gives systemd-resolved's
//! upstream servers instead, as it does for `resolv.conf`.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ADDRESS, DnsRecord, Reply};

/// How long one upstream server has to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// At most this many upstream servers are asked (as a libc resolver does).
const MAX_UPSTREAM: usize = 3;
/// Questions being forwarded at once; past this a question gets `SERVFAIL` at once, so a
/// container cannot make its monitor hold unbounded threads.
const MAX_FORWARDING: usize = 64;
/// TCP clients served at once, and how long one may stay silent.
const MAX_TCP: usize = 16;
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The largest question read (over TCP; a UDP packet is read into this much).
const MAX_QUESTION: usize = 4096;

/// What a container's server needs.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// The container's network namespace (pinned).
    pub netns: PathBuf,
    /// The container's [`DnsRecord`].
    pub record: PathBuf,
    /// The servers other names are asked of (loopback ones are left out).
    pub upstream: Vec<IpAddr>,
}

/// Starts the server for `r` on threads of its own and returns once it listens (or could not:
/// the namespace cannot be entered, the address is taken). It serves for the life of the
/// process.
pub fn start(r: Resolver) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("dns".into())
        .spawn(move || {
            let bound = enter(&r.netns).and_then(|()| {
                let at = SocketAddrV4::new(ADDRESS, 53);
                let udp = UdpSocket::bind(at).map_err(|e| format!("cannot bind udp {at}: {e}"))?;
                let tcp =
                    TcpListener::bind(at).map_err(|e| format!("cannot bind tcp {at}: {e}"))?;
                Ok((udp, tcp))
            });
            let (udp, tcp) = match bound {
                Ok(s) => {
                    let _ = tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let shared = Arc::new(Shared {
                names: Names::new(r.record),
                upstream: r
                    .upstream
                    .into_iter()
                    .filter(|a| !a.is_loopback() && !a.is_unspecified())
                    .take(MAX_UPSTREAM)
                    .map(|a| SocketAddr::new(a, 53))
                    .collect(),
                forwarding: AtomicUsize::new(0),
            });
            // Threads made here are in the container's namespace too (a new thread starts in
            // its creator's).
            let s = shared.clone();
            let _ = std::thread::Builder::new()
                .name("dns-tcp".into())
                .spawn(move || serve_tcp(&tcp, &s));
            serve_udp(&udp, &shared);
        })
        .map_err(|e| format!("cannot start the name server: {e}"))?;
    rx.recv()
        .unwrap_or_else(|_| Err("the name server's thread failed".into()))
}

/// Moves the calling thread into the network namespace pinned at `netns` (this thread only).
fn enter(netns: &std::path::Path) -> Result<(), String> {
    let ns =
        std::fs::File::open(netns).map_err(|e| format!("cannot open {}: {e}", netns.display()))?;
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("cannot enter {}: {e}", netns.display()))
}

struct Shared {
    names: Names,
    upstream: Vec<SocketAddr>,
    forwarding: AtomicUsize,
}

impl Shared {
    /// The reply to `packet` for a client taking at most `limit` bytes, asking upstream when
    /// the record does not know the name (on the calling thread).
    fn reply(&self, packet: &[u8], limit: usize) -> Option<Vec<u8>> {
        match super::answer(packet, &self.names.current(), limit) {
            Reply::Answer(a) => Some(a),
            Reply::Ignore => None,
            Reply::Forward if self.upstream.is_empty() => super::failure(packet, true),
            Reply::Forward => match forward(packet, &self.upstream) {
                Some(r) => Some(super::relay(&r, limit)),
                None => super::failure(packet, false),
            },
        }
    }
}

fn serve_udp(socket: &UdpSocket, shared: &Arc<Shared>) {
    let mut buf = vec![0u8; MAX_QUESTION];
    loop {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "the name server stopped");
                return;
            }
        };
        let packet = buf[..n].to_vec();
        let limit = super::udp_limit(&packet);
        // Names the record knows are answered here at once; only a forward waits, on a
        // thread of its own.
        match super::answer(&packet, &shared.names.current(), limit) {
            Reply::Answer(a) => {
                let _ = socket.send_to(&a, from);
            }
            Reply::Ignore => {}
            Reply::Forward => {
                let busy = shared.forwarding.fetch_add(1, Ordering::SeqCst) >= MAX_FORWARDING;
                let spawned = !busy
                    && socket.try_clone().is_ok_and(|out| {
                        let s = shared.clone();
                        let packet = packet.clone();
                        std::thread::Builder::new()
                            .spawn(move || {
                                if let Some(r) = s.reply(&packet, limit) {
                                    let _ = out.send_to(&r, from);
                                }
                                s.forwarding.fetch_sub(1, Ordering::SeqCst);
                            })
                            .is_ok()
                    });
                if !spawned {
                    shared.forwarding.fetch_sub(1, Ordering::SeqCst);
                    if let Some(r) = super::failure(&packet, false) {
                        let _ = socket.send_to(&r, from);
                    }
                }
            }
        }
    }
}

fn serve_tcp(listener: &TcpListener, shared: &Arc<Shared>) {
    let clients = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if clients.fetch_add(1, Ordering::SeqCst) >= MAX_TCP {
            clients.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let (s, c) = (shared.clone(), clients.clone());
        let spawned = std::thread::Builder::new().spawn(move || {
            let _ = serve_conn(conn, &s);
            c.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            clients.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Answers the length-prefixed questions of one TCP client until it closes or falls silent.
fn serve_conn(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(TCP_IDLE))?;
    conn.set_write_timeout(Some(TCP_IDLE))?;
    loop {
        let mut len = [0u8; 2];
        conn.read_exact(&mut len)?;
        let len = usize::from(u16::from_be_bytes(len));
        if len > MAX_QUESTION {
            return Ok(());
        }
        let mut packet = vec![0u8; len];
        conn.read_exact(&mut packet)?;
        let Some(reply) = shared.reply(&packet, usize::from(u16::MAX)) else {
            return Ok(());
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return Ok(());
        };
        conn.write_all(&[&n.to_be_bytes()[..], &reply].concat())?;
    }
}

/// Asks each upstream server in turn over UDP (a new socket each: a random source port) and
/// returns the first reply that answers `packet`.
fn forward(packet: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let local: SocketAddr = match server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let Ok(socket) = UdpSocket::bind(local) else {
            continue;
        };
        // Connected: only packets from that server arrive.
        if socket.connect(server).is_err() || socket.send(packet).is_err() {
            continue;
        }
        let until = Instant::now() + UPSTREAM_TIMEOUT;
        let mut buf = vec![0u8; 65535];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match socket.recv(&mut buf) {
                Ok(n) if super::answers(packet, &buf[..n]) => return Some(buf[..n].to_vec()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    None
}

/// The record as last read, read again when the file changed (the endpoint replaces it
/// whole: a new inode).
struct Names {
    path: PathBuf,
    cached: Mutex<Option<(Stamp, Arc<DnsRecord>)>>,
}

type Stamp = (u64, i64, i64, u64);

impl Names {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            cached: Mutex::new(None),
        }
    }

    fn current(&self) -> Arc<DnsRecord> {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.len()));
        let Ok(mut cached) = self.cached.lock() else {
            return Arc::new(DnsRecord::read(&self.path));
        };
        if let (Some(stamp), Some((seen, record))) = (stamp, cached.as_ref())
            && stamp == *seen
        {
            return record.clone();
        }
        let record = Arc::new(DnsRecord::read(&self.path));
        *cached = stamp.map(|s| (s, record.clone()));
        record
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    use super::*;

    fn question(name: &str) -> Vec<u8> {
        let mut m = Message::new(0x7777, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    /// A fake upstream server: first a reply with the wrong ID (a spoofing attempt), then the
    /// real one.
    fn upstream() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let at = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            let mut reply = Message::from_vec(&buf[..n]).unwrap();
            reply.metadata.message_type = MessageType::Response;
            let name = reply.queries[0].name().clone();
            reply.add_answer(Record::from_rdata(
                name,
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
            ));
            let mut spoofed = reply.clone();
            spoofed.metadata.id ^= 1;
            socket.send_to(&spoofed.to_vec().unwrap(), from).unwrap();
            socket.send_to(&reply.to_vec().unwrap(), from).unwrap();
        });
        at
    }

    #[test]
    fn other_names_are_forwarded_and_only_the_real_answer_relayed() {
        let q = question("example.org.");
        let reply = forward(&q, &[upstream()]).unwrap();
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.metadata.id, 0x7777);
        assert!(matches!(&m.answers[0].data, RData::A(a) if a.0 == Ipv4Addr::new(192, 0, 2, 1)));
        // A server that never answers: nothing, once its time is up.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(forward(&q, &[silent.local_addr().unwrap()]), None);
    }

    #[test]
    fn udp_and_tcp_clients_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("dns.json");
        DnsRecord {
            entries: vec![super::super::DnsEntry {
                network: "n".into(),
                ip: Ipv4Addr::new(10, 0, 0, 7),
                name: "web".into(),
                names: vec!["web".into()],
            }],
        }
        .write(&record)
        .unwrap();
        let shared = Arc::new(Shared {
            names: Names::new(record),
            upstream: Vec::new(),
            forwarding: AtomicUsize::new(0),
        });
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let (udp_at, tcp_at) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
        let s = shared.clone();
        std::thread::spawn(move || serve_udp(&udp, &s));
        std::thread::spawn(move || serve_tcp(&tcp, &shared));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.send_to(&question("web."), udp_at).unwrap();
        let mut buf = [0u8; 512];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(Message::from_vec(&buf[..n]).unwrap().answers.len(), 1);
        // TCP: two length-prefixed questions on one connection.
        let mut conn = TcpStream::connect(tcp_at).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for name in ["web.", "other."] {
            let q = question(name);
            let len = u16::try_from(q.len()).unwrap().to_be_bytes();
            conn.write_all(&[&len[..], &q].concat()).unwrap();
            let mut len = [0u8; 2];
            conn.read_exact(&mut len).unwrap();
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            conn.read_exact(&mut reply).unwrap();
            let m = Message::from_vec(&reply).unwrap();
            let expected = match name {
                "web." => ResponseCode::NoError,
                _ => ResponseCode::Refused,
            };
            assert_eq!(m.metadata.response_code, expected, "{name}");
        }
    }

    #[test]
    fn without_upstream_servers_other_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared {
            names: Names::new(dir.path().join("dns.json")),
            upstream: Vec::new(),
            forwarding: AtomicUsize::new(0),
        };
        let reply = shared.reply(&question("example.org."), 512).unwrap();
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        // The record is read again once replaced.
        DnsRecord {
            entries: vec![super::super::DnsEntry {
                network: "n".into(),
                ip: Ipv4Addr::new(10, 0, 0, 5),
                name: "example".into(),
                names: vec!["example.org".into()],
            }],
        }
        .write(&dir.path().join("dns.json"))
        .unwrap();
        let reply = shared.reply(&question("example.org."), 512).unwrap();
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
    }
}
