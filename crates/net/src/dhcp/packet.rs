//! DHCPv4 messages a client sends and the replies it accepts, built and read with `dhcproto`
//! (RFC 2131/2132). Pure: no sockets, no clock.

use std::net::Ipv4Addr;

use dhcproto::v4::{
    self, Decodable as _, DhcpOption, Encodable as _, Flags, Message, MessageType, Opcode,
    OptionCode,
};

use super::DhcpError;

/// Who the client is to the server: the MAC of its interface (`chaddr`) and the client
/// identifier derived from it (option 61: hardware type 1, then the MAC), which servers key
/// leases by — the same container asks again with the same identity and gets its address back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub mac: [u8; 6],
}

impl Identity {
    /// `aa:bb:cc:dd:ee:ff`.
    pub fn parse_mac(mac: &str) -> Result<Self, DhcpError> {
        let mut out = [0u8; 6];
        let parts: Vec<&str> = mac.split(':').collect();
        if parts.len() != 6 {
            return Err(DhcpError::Packet(format!("bad MAC address {mac:?}")));
        }
        for (o, p) in out.iter_mut().zip(parts) {
            *o = u8::from_str_radix(p, 16)
                .map_err(|_| DhcpError::Packet(format!("bad MAC address {mac:?}")))?;
        }
        Ok(Self { mac: out })
    }

    fn client_id(&self) -> Vec<u8> {
        let mut id = vec![1u8];
        id.extend_from_slice(&self.mac);
        id
    }
}

/// What a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Looking for servers; `hint`: the address it had (servers may give it back).
    Discover { hint: Option<Ipv4Addr> },
    /// Taking `address` from the server that offered it (SELECTING, broadcast).
    Select { address: Ipv4Addr, server: Ipv4Addr },
    /// Extending the lease on `address` (RENEWING: unicast to its server; REBINDING:
    /// broadcast to any). No server identifier, `ciaddr` set (RFC 2131 4.3.2).
    Extend { address: Ipv4Addr },
    /// Giving `address` back to `server`.
    Release { address: Ipv4Addr, server: Ipv4Addr },
}

/// The options a client asks for.
const WANTED: [OptionCode; 6] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::AddressLeaseTime,
    OptionCode::Renewal,
    OptionCode::Rebinding,
];

/// The bytes of `req` from `who` with transaction id `xid`. The BROADCAST flag is set while
/// the client has no address: its interface is unaddressed, so the kernel would drop a reply
/// unicast to the offered address; with the flag, servers answer by broadcast.
pub fn build(req: Request, who: &Identity, xid: u32) -> Result<Vec<u8>, DhcpError> {
    let zero = Ipv4Addr::UNSPECIFIED;
    let ciaddr = match req {
        Request::Extend { address } | Request::Release { address, .. } => address,
        _ => zero,
    };
    let mut msg = Message::new_with_id(xid, ciaddr, zero, zero, zero, &who.mac);
    msg.set_opcode(Opcode::BootRequest);
    if ciaddr.is_unspecified() {
        msg.set_flags(Flags::default().set_broadcast());
    }
    let opts = msg.opts_mut();
    let kind = match req {
        Request::Discover { .. } => MessageType::Discover,
        Request::Select { .. } | Request::Extend { .. } => MessageType::Request,
        Request::Release { .. } => MessageType::Release,
    };
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ClientIdentifier(who.client_id()));
    match req {
        Request::Discover { hint } => {
            if let Some(ip) = hint {
                opts.insert(DhcpOption::RequestedIpAddress(ip));
            }
        }
        Request::Select { address, server } => {
            opts.insert(DhcpOption::RequestedIpAddress(address));
            opts.insert(DhcpOption::ServerIdentifier(server));
        }
        Request::Extend { .. } => {}
        Request::Release { server, .. } => {
            opts.insert(DhcpOption::ServerIdentifier(server));
        }
    }
    if !matches!(req, Request::Release { .. }) {
        opts.insert(DhcpOption::ParameterRequestList(WANTED.to_vec()));
    }
    msg.to_vec()
        .map_err(|e| DhcpError::Packet(format!("cannot encode a DHCP message: {e}")))
}

/// A server's answer, as far as a client cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    /// The address offered or acknowledged (`yiaddr`).
    pub address: Ipv4Addr,
    /// The server identifier (option 54), else the sender's `siaddr`.
    pub server: Ipv4Addr,
    pub mask: Option<Ipv4Addr>,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease_secs: Option<u32>,
    pub t1_secs: Option<u32>,
    pub t2_secs: Option<u32>,
    /// A NAK's message (option 56), if any.
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Offer,
    Ack,
    Nak,
}

/// Reads `bytes` as a reply to transaction `xid` of `who`; `None` for anything else (another
/// client's reply on the shared segment, a request, a malformed packet).
pub fn parse(bytes: &[u8], who: &Identity, xid: u32) -> Option<Reply> {
    let msg = Message::decode(&mut v4::Decoder::new(bytes)).ok()?;
    if msg.opcode() != Opcode::BootReply || msg.xid() != xid || msg.chaddr().get(..6)? != who.mac {
        return None;
    }
    let opts = msg.opts();
    let kind = match opts.msg_type()? {
        MessageType::Offer => ReplyKind::Offer,
        MessageType::Ack => ReplyKind::Ack,
        MessageType::Nak => ReplyKind::Nak,
        _ => return None,
    };
    let addr = |code| match opts.get(code) {
        Some(DhcpOption::SubnetMask(a) | DhcpOption::ServerIdentifier(a)) => Some(*a),
        _ => None,
    };
    let secs = |code| match opts.get(code) {
        Some(
            DhcpOption::AddressLeaseTime(s) | DhcpOption::Renewal(s) | DhcpOption::Rebinding(s),
        ) => Some(*s),
        _ => None,
    };
    Some(Reply {
        kind,
        address: msg.yiaddr(),
        server: addr(OptionCode::ServerIdentifier).unwrap_or(msg.siaddr()),
        mask: addr(OptionCode::SubnetMask),
        router: match opts.get(OptionCode::Router) {
            Some(DhcpOption::Router(r)) => r.first().copied(),
            _ => None,
        },
        dns: match opts.get(OptionCode::DomainNameServer) {
            Some(DhcpOption::DomainNameServer(d)) => d.clone(),
            _ => Vec::new(),
        },
        lease_secs: secs(OptionCode::AddressLeaseTime),
        t1_secs: secs(OptionCode::Renewal),
        t2_secs: secs(OptionCode::Rebinding),
        message: match opts.get(OptionCode::Message) {
            Some(DhcpOption::Message(m)) => Some(m.clone()),
            _ => None,
        },
    })
}

/// A server's reply to a request (for the tests' fake server).
#[cfg(test)]
pub(crate) fn server_reply(
    request: &[u8],
    kind: MessageType,
    address: Ipv4Addr,
    server: Ipv4Addr,
    lease_secs: u32,
) -> Option<(Vec<u8>, MessageType, Option<Ipv4Addr>)> {
    let req = Message::decode(&mut v4::Decoder::new(request)).ok()?;
    let asked = req.opts().msg_type()?;
    let requested = match req.opts().get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(a)) => Some(*a),
        _ => None,
    };
    let mut msg = Message::new_with_id(
        req.xid(),
        req.ciaddr(),
        address,
        server,
        Ipv4Addr::UNSPECIFIED,
        req.chaddr().get(..6)?,
    );
    msg.set_opcode(Opcode::BootReply);
    let o = msg.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ServerIdentifier(server));
    o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
    o.insert(DhcpOption::Router(vec![server]));
    o.insert(DhcpOption::DomainNameServer(vec![server]));
    o.insert(DhcpOption::AddressLeaseTime(lease_secs));
    Some((msg.to_vec().ok()?, asked, requested))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Identity {
        Identity::parse_mac("0a:12:34:56:78:9a").unwrap()
    }

    #[test]
    fn requests_carry_what_rfc_2131_asks() {
        let w = who();
        let ip = Ipv4Addr::new(198, 51, 100, 20);
        let srv = Ipv4Addr::new(198, 51, 100, 1);
        let d = Message::from_bytes(&build(Request::Discover { hint: Some(ip) }, &w, 7).unwrap())
            .unwrap();
        assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
        assert!(d.flags().broadcast());
        assert_eq!(d.chaddr(), &w.mac);
        assert_eq!(d.xid(), 7);
        assert_eq!(
            d.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(ip))
        );
        assert_eq!(
            d.opts().get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(vec![
                1, 0x0a, 0x12, 0x34, 0x56, 0x78, 0x9a
            ]))
        );
        let s = Message::from_bytes(
            &build(
                Request::Select {
                    address: ip,
                    server: srv,
                },
                &w,
                8,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(s.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(
            s.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(srv))
        );
        assert!(s.ciaddr().is_unspecified());
        // Renewing: ciaddr, no server identifier nor requested address, no broadcast flag.
        let r =
            Message::from_bytes(&build(Request::Extend { address: ip }, &w, 9).unwrap()).unwrap();
        assert_eq!(r.ciaddr(), ip);
        assert!(!r.flags().broadcast());
        assert!(r.opts().get(OptionCode::ServerIdentifier).is_none());
        assert!(r.opts().get(OptionCode::RequestedIpAddress).is_none());
        let rel = Message::from_bytes(
            &build(
                Request::Release {
                    address: ip,
                    server: srv,
                },
                &w,
                10,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(rel.opts().msg_type(), Some(MessageType::Release));
        assert_eq!(rel.ciaddr(), ip);
    }

    #[test]
    fn replies_to_others_are_not_ours() {
        let w = who();
        let req = build(Request::Discover { hint: None }, &w, 42).unwrap();
        let srv = Ipv4Addr::new(203, 0, 113, 1);
        let ip = Ipv4Addr::new(203, 0, 113, 50);
        let (offer, asked, _) = server_reply(&req, MessageType::Offer, ip, srv, 3600).unwrap();
        assert_eq!(asked, MessageType::Discover);
        let r = parse(&offer, &w, 42).unwrap();
        assert_eq!(r.kind, ReplyKind::Offer);
        assert_eq!((r.address, r.server, r.router), (ip, srv, Some(srv)));
        assert_eq!(r.mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!((r.dns.clone(), r.lease_secs), (vec![srv], Some(3600)));
        // Another transaction, another client, our own request, garbage.
        assert!(parse(&offer, &w, 43).is_none());
        let other = Identity::parse_mac("0a:00:00:00:00:01").unwrap();
        assert!(parse(&offer, &other, 42).is_none());
        assert!(parse(&req, &w, 42).is_none());
        assert!(parse(&[1, 2, 3], &w, 42).is_none());
        assert!(Identity::parse_mac("0a:00:00").is_err());
    }
}
