use std::net::Ipv4Addr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::*;

fn record() -> DnsRecord {
    DnsRecord {
        entries: vec![
            DnsEntry {
                network: "back".into(),
                ip: Ipv4Addr::new(10, 10, 0, 2),
                name: "db".into(),
                names: vec![
                    "bar".into(),
                    "db".into(),
                    "database".into(),
                    "0123456789ab".into(),
                ],
            },
            DnsEntry {
                network: "front".into(),
                ip: Ipv4Addr::new(172, 17, 0, 3),
                name: "db".into(),
                names: vec!["db".into(), "store".into()],
            },
        ],
    }
}

fn question(name: &str, kind: RecordType) -> Vec<u8> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    m.to_vec().unwrap()
}

fn parse(reply: Reply) -> Message {
    match reply {
        Reply::Answer(bytes) => Message::from_vec(&bytes).unwrap(),
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn addresses(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[test]
fn names_aliases_links_ids_and_qualified_names_resolve_in_any_case() {
    let r = record();
    for name in [
        "bar",
        "DB.",
        "database",
        "0123456789AB",
        "db.back",
        "Store.Front.",
    ] {
        assert!(!r.lookup(name).is_empty(), "{name}");
    }
    // On both networks: both addresses, in the record's order.
    assert_eq!(
        r.lookup("db"),
        [Ipv4Addr::new(10, 10, 0, 2), Ipv4Addr::new(172, 17, 0, 3)]
    );
    assert_eq!(r.lookup("db.front"), [Ipv4Addr::new(172, 17, 0, 3)]);
    for name in ["api", "db.other", "back", "b", "store.back", "0123456789"] {
        assert!(r.lookup(name).is_empty(), "{name}");
    }
    assert_eq!(
        r.reverse(Ipv4Addr::new(10, 10, 0, 2)).as_deref(),
        Some("db.back.")
    );
}

#[test]
fn known_names_are_answered_and_others_forwarded() {
    let r = record();
    let m = parse(answer(&question("database.", RecordType::A), &r, 512));
    assert_eq!(m.metadata.id, 0x4242);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.recursion_desired && m.metadata.recursion_available);
    assert_eq!(m.queries.len(), 1);
    assert_eq!(addresses(&m), [Ipv4Addr::new(10, 10, 0, 2)]);
    assert_eq!(m.answers[0].ttl, 600);
    // A known name has no IPv6 address: an empty answer, not a question upstream.
    let m = parse(answer(&question("db.", RecordType::AAAA), &r, 512));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    // Reverse lookups of a recorded address.
    let m = parse(answer(
        &question("2.0.10.10.in-addr.arpa.", RecordType::PTR),
        &r,
        512,
    ));
    assert!(matches!(&m.answers[0].data, RData::PTR(p) if p.0.to_ascii() == "db.back."));
    // Everything else goes upstream.
    for (name, kind) in [
        ("example.org.", RecordType::A),
        ("api.", RecordType::A),
        ("9.9.9.9.in-addr.arpa.", RecordType::PTR),
    ] {
        assert_eq!(
            answer(&question(name, kind), &r, 512),
            Reply::Forward,
            "{name}"
        );
    }
}

#[test]
fn malformed_packets_and_responses_are_not_answered_as_questions() {
    let r = record();
    assert_eq!(answer(&[1, 2, 3], &r, 512), Reply::Ignore);
    // Garbage with a question's header: FORMERR with its ID.
    let m = parse(answer(
        &[0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff],
        &r,
        512,
    ));
    assert_eq!(m.metadata.id, 0x1234);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // A response is never answered (no loops between servers).
    let mut resp = Message::from_vec(&question("db.", RecordType::A)).unwrap();
    resp.metadata.message_type = MessageType::Response;
    assert_eq!(answer(&resp.to_vec().unwrap(), &r, 512), Reply::Ignore);
    // Not a query: not implemented.
    let mut notify = Message::from_vec(&question("db.", RecordType::A)).unwrap();
    notify.metadata.op_code = OpCode::Notify;
    let m = parse(answer(&notify.to_vec().unwrap(), &r, 512));
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
}

#[test]
fn long_answers_are_truncated_for_udp() {
    let r = DnsRecord {
        entries: (0..100)
            .map(|i| DnsEntry {
                network: format!("n{i}"),
                ip: Ipv4Addr::new(10, 0, 0, i),
                name: "many".into(),
                names: vec!["many".into()],
            })
            .collect(),
    };
    let q = question("many.", RecordType::A);
    let Reply::Answer(small) = answer(&q, &r, 512) else {
        panic!()
    };
    assert!(small.len() <= 512);
    let m = Message::from_vec(&small).unwrap();
    assert!(m.metadata.truncation && m.answers.is_empty());
    let m = parse(answer(&q, &r, 65535));
    assert_eq!(m.answers.len(), 100);
    assert!(!m.metadata.truncation);
}

#[test]
fn upstream_replies_must_answer_the_question_asked() {
    let q = question("example.org.", RecordType::A);
    let mut reply = Message::from_vec(&q).unwrap();
    reply.metadata.message_type = MessageType::Response;
    assert!(answers(&q, &reply.to_vec().unwrap()));
    let mut other_id = reply.clone();
    other_id.metadata.id = 1;
    assert!(!answers(&q, &other_id.to_vec().unwrap()));
    let other_name = Message::from_vec(&question("evil.example.", RecordType::A)).unwrap();
    let mut other_name = other_name;
    other_name.metadata.message_type = MessageType::Response;
    assert!(!answers(&q, &other_name.to_vec().unwrap()));
    // The question itself echoed back is not an answer.
    assert!(!answers(&q, &q));
    // Failures carry the question.
    let refused = Message::from_vec(&failure(&q, true).unwrap()).unwrap();
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert_eq!(refused.queries.len(), 1);
    let failed = Message::from_vec(&failure(&q, false).unwrap()).unwrap();
    assert_eq!(failed.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn records_round_trip_through_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dns.json");
    assert_eq!(DnsRecord::read(&path), DnsRecord::default());
    record().write(&path).unwrap();
    assert_eq!(DnsRecord::read(&path), record());
    std::fs::write(&path, "not json").unwrap();
    assert_eq!(DnsRecord::read(&path), DnsRecord::default());
}
