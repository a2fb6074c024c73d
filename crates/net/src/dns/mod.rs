//! A container's embedded name server, as Docker runs one at 127.0.0.11 for containers on
//! user-defined networks: it answers for the containers that share a network with this one
//! (names, `--network-alias`es, `--link` aliases, short IDs, each also as `NAME.NETWORK`) and
//! hands every other question to the upstream servers.
//!
//! What it knows is a [`DnsRecord`], a small JSON file in the container's folder that the
//! endpoint rewrites (whole, atomically) whenever a container starts, stops, connects or
//! disconnects; the container cannot write it (it is not mounted into the container, unlike
//! `/etc/hosts`). The record is per container rather than per network because `--link`
//! aliases are: only the container that made the link knows the other by that alias.
//!
//! This file is the pure part: the record and the answer to one question ([`answer`]), over
//! hickory-proto's wire format. [`server`] is the sockets, which a container's monitor runs.

pub mod server;

use std::net::Ipv4Addr;
use std::path::Path;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use serde::{Deserialize, Serialize};

/// The address the server listens on in the container's namespace (Docker's).
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// How long a client may keep an answer about a container (Docker's 600 s).
const TTL: u32 = 600;

/// The largest record file read: far more than any VCH's containers need.
const MAX_RECORD: u64 = 4 << 20;

/// The names a container's server answers for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub entries: Vec<DnsEntry>,
}

/// One container on one network this container shares with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsEntry {
    /// The network, which also qualifies every name (`NAME.NETWORK`).
    pub network: String,
    pub ip: Ipv4Addr,
    /// The container's name, the answer to a reverse lookup of `ip` (as `NAME.NETWORK`).
    pub name: String,
    /// Every name it answers to here: link aliases, name, network aliases, short ID.
    pub names: Vec<String>,
}

impl DnsRecord {
    /// Reads the record at `path`; a missing, oversized or unreadable one knows no names.
    pub fn read(path: &Path) -> Self {
        let Ok(file) = std::fs::File::open(path) else {
            return Self::default();
        };
        let mut bytes = Vec::new();
        if std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_RECORD), &mut bytes)
            .is_err()
        {
            return Self::default();
        }
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    /// Replaces the record at `path` whole (readers see the old one or the new one).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        vic_core::fs::write_atomic(path, &bytes, 0o644)
    }

    /// The addresses `name` (any case, with or without its final dot) stands for.
    pub fn lookup(&self, name: &str) -> Vec<Ipv4Addr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut out = Vec::new();
        for e in &self.entries {
            let network = e.network.to_ascii_lowercase();
            let matches = |n: &String| {
                name.eq_ignore_ascii_case(n)
                    || name
                        .strip_suffix(network.as_str())
                        .and_then(|s| s.strip_suffix('.'))
                        .is_some_and(|s| s.eq_ignore_ascii_case(n))
            };
            if e.names.iter().any(matches) && !out.contains(&e.ip) {
                out.push(e.ip);
            }
        }
        out
    }

    /// The name a reverse lookup of `ip` answers, `NAME.NETWORK.`.
    pub fn reverse(&self, ip: Ipv4Addr) -> Option<String> {
        self.entries
            .iter()
            .find(|e| e.ip == ip)
            .map(|e| format!("{}.{}.", e.name, e.network))
    }
}

/// What to do with one packet a client sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Send this answer back.
    Answer(Vec<u8>),
    /// Not a name this server knows: ask the upstream servers.
    Forward,
    /// Not a question (a response, or too short to carry an ID): ignore it.
    Ignore,
}

/// The answer to the question in `packet`, from `record`, at most `limit` bytes (512 for a UDP
/// client without EDNS; a longer answer is cut and marked truncated, for the client to ask
/// again over TCP).
pub fn answer(packet: &[u8], record: &DnsRecord, limit: usize) -> Reply {
    let query = match Message::from_vec(packet) {
        Ok(q) => q,
        Err(_) if packet.len() >= 12 && packet[2] & 0x80 == 0 => {
            let id = u16::from_be_bytes([packet[0], packet[1]]);
            return Reply::Answer(error(id, OpCode::Query, ResponseCode::FormErr));
        }
        Err(_) => return Reply::Ignore,
    };
    let meta = query.metadata;
    if meta.message_type != MessageType::Query {
        return Reply::Ignore;
    }
    if meta.op_code != OpCode::Query {
        return Reply::Answer(error(meta.id, meta.op_code, ResponseCode::NotImp));
    }
    let [q] = query.queries.as_slice() else {
        return Reply::Answer(error(meta.id, meta.op_code, ResponseCode::FormErr));
    };
    if q.query_class() != DNSClass::IN {
        return Reply::Forward;
    }
    let name = q.name().to_ascii();
    let records: Vec<Record> = match q.query_type() {
        RecordType::PTR => match arpa_v4(&name).and_then(|ip| record.reverse(ip)) {
            Some(target) => match Name::from_ascii(&target) {
                Ok(target) => vec![Record::from_rdata(
                    q.name().clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                )],
                Err(_) => return Reply::Forward,
            },
            None => return Reply::Forward,
        },
        kind => {
            let ips = record.lookup(&name);
            if ips.is_empty() {
                return Reply::Forward;
            }
            // A known name of another kind (AAAA: the networks are IPv4) has no records: an
            // empty answer, never a question for the upstream servers about a container.
            if kind == RecordType::A {
                ips.into_iter()
                    .map(|ip| Record::from_rdata(q.name().clone(), TTL, RData::A(A(ip))))
                    .collect()
            } else {
                Vec::new()
            }
        }
    };
    let mut reply = Message::response(meta.id, meta.op_code);
    reply.metadata.recursion_desired = meta.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_query(q.clone());
    reply.add_answers(records);
    Reply::Answer(fit(reply, limit))
}

/// The most a UDP client takes, by its EDNS size (at least 512, at most 4096).
pub fn udp_limit(packet: &[u8]) -> usize {
    Message::from_vec(packet)
        .map(|m| usize::from(m.max_payload()))
        .unwrap_or(512)
        .clamp(512, 4096)
}

/// Whether `reply`, from an upstream server, answers `query`: a response with its ID and its
/// question (anything else is dropped, as a spoofing attempt or a stray).
pub fn answers(query: &[u8], reply: &[u8]) -> bool {
    let (Ok(q), Ok(r)) = (Message::from_vec(query), Message::from_vec(reply)) else {
        return false;
    };
    r.metadata.message_type == MessageType::Response
        && r.metadata.id == q.metadata.id
        && same_questions(&q.queries, &r.queries)
}

fn same_questions(a: &[Query], b: &[Query]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            a.query_type() == b.query_type()
                && a.query_class() == b.query_class()
                && a.name() == b.name()
        })
}

/// An upstream server's `reply` as the client may take it: cut (and marked truncated) past
/// `limit` bytes.
pub fn relay(reply: &[u8], limit: usize) -> Vec<u8> {
    if reply.len() <= limit {
        return reply.to_vec();
    }
    match Message::from_vec(reply) {
        Ok(m) => m.truncate().to_vec().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The answer when no upstream server could be asked (`REFUSED`: there are none) or none
/// answered (`SERVFAIL`).
pub fn failure(packet: &[u8], refused: bool) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    let code = if refused {
        ResponseCode::Refused
    } else {
        ResponseCode::ServFail
    };
    let mut reply = Message::error_msg(query.metadata.id, query.metadata.op_code, code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_queries(query.queries);
    reply.to_vec().ok()
}

fn error(id: u16, op: OpCode, code: ResponseCode) -> Vec<u8> {
    Message::error_msg(id, op, code)
        .to_vec()
        .unwrap_or_default()
}

/// `reply` encoded, or its truncated form when longer than `limit`.
fn fit(reply: Message, limit: usize) -> Vec<u8> {
    match reply.to_vec() {
        Ok(bytes) if bytes.len() <= limit => bytes,
        _ => reply.truncate().to_vec().unwrap_or_default(),
    }
}

/// The IPv4 address a reverse name (`4.3.2.1.in-addr.arpa.`) stands for.
fn arpa_v4(name: &str) -> Option<Ipv4Addr> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let parts: Vec<u8> = rest
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [d, c, b, a] = parts.as_slice() else {
        return None;
    };
    Some(Ipv4Addr::new(*a, *b, *c, *d))
}

#[cfg(test)]
mod tests;
