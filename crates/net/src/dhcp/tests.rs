//! The client's exchanges against a fake server (no network).

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use dhcproto::v4::MessageType;

use super::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const GIVEN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);

/// A server in-process: answers each packet sent as `answer` says, and records what it saw.
struct FakeServer {
    /// How to answer each message type (`None`: stay silent).
    answer: fn(MessageType) -> Option<MessageType>,
    lease_secs: u32,
    inbox: VecDeque<Vec<u8>>,
    seen: Vec<(MessageType, SocketAddrV4, Option<Ipv4Addr>)>,
}

impl FakeServer {
    fn new(answer: fn(MessageType) -> Option<MessageType>) -> Self {
        Self {
            answer,
            lease_secs: 120,
            inbox: VecDeque::new(),
            seen: Vec::new(),
        }
    }

    fn kinds(&self) -> Vec<MessageType> {
        self.seen.iter().map(|s| s.0).collect()
    }
}

impl Transport for FakeServer {
    fn send(&mut self, packet: &[u8], to: SocketAddrV4) -> Result<(), DhcpError> {
        // A reply built only to learn the request's type and requested address.
        let (_, asked, requested) =
            packet::server_reply(packet, MessageType::Ack, GIVEN, SERVER, self.lease_secs)
                .ok_or_else(|| DhcpError::Packet("unreadable request".into()))?;
        self.seen.push((asked, to, requested));
        if let Some(kind) = (self.answer)(asked) {
            let (reply, _, _) = packet::server_reply(packet, kind, GIVEN, SERVER, self.lease_secs)
                .ok_or_else(|| DhcpError::Packet("cannot answer".into()))?;
            // Noise on the segment first: the client keeps waiting for its own.
            self.inbox.push_back(vec![0xde, 0xad]);
            self.inbox.push_back(reply);
        }
        Ok(())
    }

    fn recv(&mut self, _until: Instant) -> Result<Option<Vec<u8>>, DhcpError> {
        // Nothing more: as if the deadline passed at once, so the tests take no time.
        Ok(self.inbox.pop_front())
    }
}

fn who() -> Identity {
    Identity::parse_mac("0a:00:00:00:00:2a").unwrap()
}

fn normal(kind: MessageType) -> Option<MessageType> {
    match kind {
        MessageType::Discover => Some(MessageType::Offer),
        MessageType::Request => Some(MessageType::Ack),
        _ => None,
    }
}

#[test]
fn discover_offer_request_ack() {
    let mut s = FakeServer::new(normal);
    let lease = acquire(&mut s, &who(), "eth0", Some(GIVEN)).unwrap();
    assert_eq!(s.kinds(), [MessageType::Discover, MessageType::Request]);
    // Both broadcast; the REQUEST names the offered address.
    assert!(
        s.seen
            .iter()
            .all(|x| *x.1.ip() == Ipv4Addr::BROADCAST && x.1.port() == 67)
    );
    assert_eq!(s.seen[1].2, Some(GIVEN));
    assert_eq!(
        (lease.address, lease.prefix, lease.server),
        (GIVEN, 24, SERVER)
    );
    assert_eq!(
        (lease.router, lease.dns.clone()),
        (Some(SERVER), vec![SERVER])
    );
    assert_eq!(
        (lease.lease_time, lease.renew_after, lease.rebind_after),
        (120, 60, 105)
    );
    assert_eq!(lease.mac, "0a:00:00:00:00:2a");
    assert_eq!(lease.subnet().to_string(), "198.51.100.0/24");
    assert!(!lease.obtained_at.is_empty());
}

#[test]
fn no_server_is_a_clear_error_after_retries() {
    let mut s = FakeServer::new(|_| None);
    let e = acquire(&mut s, &who(), "eth0", None).unwrap_err();
    assert!(matches!(e, DhcpError::NoOffer { .. }));
    assert!(
        e.to_string()
            .contains("no DHCP server answered on eth0 within 10 s"),
        "{e}"
    );
    assert_eq!(s.kinds(), vec![MessageType::Discover; DISCOVER_WAITS.len()]);
}

#[test]
fn a_refusal_or_silence_after_the_offer_fails() {
    let mut s = FakeServer::new(|k| match k {
        MessageType::Discover => Some(MessageType::Offer),
        _ => Some(MessageType::Nak),
    });
    assert!(matches!(
        acquire(&mut s, &who(), "eth0", None),
        Err(DhcpError::Nak { .. })
    ));
    let mut s = FakeServer::new(|k| (k == MessageType::Discover).then_some(MessageType::Offer));
    assert!(matches!(
        acquire(&mut s, &who(), "eth0", None),
        Err(DhcpError::NoAck { .. })
    ));
}

#[test]
fn renewal_is_unicast_to_the_server_and_rebinding_broadcast() {
    let mut s = FakeServer::new(normal);
    let old = acquire(&mut s, &who(), "eth0", None).unwrap();
    let mut s = FakeServer::new(normal);
    let new = extend(&mut s, &old, false).unwrap().unwrap();
    assert_eq!(s.seen[0].1, SocketAddrV4::new(SERVER, 67));
    assert_eq!(s.seen[0].0, MessageType::Request);
    assert_eq!(new.address, old.address);
    let mut s = FakeServer::new(normal);
    extend(&mut s, &old, true).unwrap().unwrap();
    assert_eq!(*s.seen[0].1.ip(), Ipv4Addr::BROADCAST);
    // Nobody answers: try again later.
    let mut s = FakeServer::new(|_| None);
    assert_eq!(extend(&mut s, &old, false).unwrap(), None);
    assert_eq!(s.seen.len(), REQUEST_WAITS.len());
    // Refused: the caller starts over.
    let mut s = FakeServer::new(|_| Some(MessageType::Nak));
    assert!(matches!(
        extend(&mut s, &old, false),
        Err(DhcpError::Nak { .. })
    ));
}

#[test]
fn release_goes_to_the_server() {
    let mut s = FakeServer::new(normal);
    let lease = acquire(&mut s, &who(), "eth0", None).unwrap();
    let mut s = FakeServer::new(normal);
    release(&mut s, &lease).unwrap();
    assert_eq!(s.kinds(), [MessageType::Release]);
    assert_eq!(s.seen[0].1, SocketAddrV4::new(SERVER, 67));
    assert!(s.inbox.is_empty());
}

#[test]
fn the_holder_renews_at_t1_rebinds_at_t2_and_starts_over_at_expiry() {
    let mut s = FakeServer::new(normal);
    let mut lease = acquire(&mut s, &who(), "eth0", None).unwrap();
    lease.obtained = 1000;
    assert_eq!(lease.step(1000), Step::WaitUntil(1060));
    assert_eq!(lease.step(1059), Step::WaitUntil(1060));
    assert_eq!(lease.step(1060), Step::Renew);
    assert_eq!(lease.step(1104), Step::Renew);
    assert_eq!(lease.step(1105), Step::Rebind);
    assert_eq!(lease.step(1120), Step::Expired);
    assert_eq!(
        lease.expires_at(),
        vic_core::time::unix_rfc3339(1120).unwrap()
    );
}

#[test]
fn a_lease_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dhcp-lease.json");
    let mut s = FakeServer::new(normal);
    let lease = acquire(&mut s, &who(), "eth0", None).unwrap();
    lease.write(&path).unwrap();
    assert_eq!(Lease::read(&path), Some(lease));
    assert_eq!(Lease::read(&dir.path().join("none")), None);
}

#[test]
fn macs_of_containers_are_stable_and_local() {
    let id = "3f2a9c0d11e4aa00bb";
    assert_eq!(mac_for_id(id), "0a:3f:2a:9c:0d:11");
    assert_eq!(mac_for_id(id), mac_for_id(id));
    assert!(Identity::parse_mac(&mac_for_id("x")).is_ok());
}
