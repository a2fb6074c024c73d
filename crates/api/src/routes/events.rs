//! `GET /events` (`docker events`): past events from `since`, then live ones until `until`,
//! filtered by type, event, container, image, volume, network and label.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use vic_docker_api::{EventActor, EventMessage};
use vic_engine::Event;

use super::Shared;
use super::filters::{label_matches, parse_filters, timestamp};
use crate::ApiError;

const FILTERS: &[&str] = &[
    "type",
    "event",
    "container",
    "image",
    "volume",
    "network",
    "label",
];

fn matches(e: &Event, filters: &BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(key, wanted)| {
        wanted.iter().any(|w| match key.as_str() {
            "type" => e.kind == w,
            "event" => e.action == *w || e.action.split(':').next() == Some(w.as_str()),
            "container" => {
                e.kind == "container"
                    && (e.id.starts_with(w.as_str())
                        || e.attributes.get("name").is_some_and(|n| n == w))
            }
            "image" => {
                e.attributes.get("image").is_some_and(|i| i == w)
                    || (e.kind == "image"
                        && (e.id == *w || e.attributes.get("name").is_some_and(|n| n == w)))
            }
            "volume" => e.kind == "volume" && e.id == *w,
            // Docker's `fuzzyMatchName`: the network's ID or name, in full or a prefix of it.
            "network" => {
                e.kind == "network"
                    && (e.id.starts_with(w.as_str())
                        || e.attributes
                            .get("name")
                            .is_some_and(|n| n.starts_with(w.as_str())))
            }
            "label" => label_matches(w, |k| e.attributes.get(k).map(String::as_str)),
            _ => false,
        })
    })
}

fn message(e: &Event) -> EventMessage {
    let old = e.kind == "container" || e.kind == "image";
    EventMessage {
        typ: e.kind.to_owned(),
        action: e.action.clone(),
        actor: EventActor {
            id: e.id.clone(),
            attributes: e.attributes.clone(),
        },
        scope: "local".to_owned(),
        time: (e.time_nano / 1_000_000_000) as i64,
        time_nano: e.time_nano as i64,
        status: old.then(|| e.action.clone()),
        id: old.then(|| e.id.clone()),
        from: e.attributes.get("image").filter(|_| old).cloned(),
    }
}

/// An event as one line of the stream.
fn line(e: &Event) -> String {
    let mut l = serde_json::to_string(&message(e)).unwrap_or_default();
    l.push('\n');
    l
}

/// `GET /events?since=&until=&filters=`.
pub(crate) async fn system_events(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let since = timestamp(q.get("since"), "since")?;
    let until = timestamp(q.get("until"), "until")?;
    let filters = parse_filters(q.get("filters"))?;
    if let Some(bad) = filters.keys().find(|k| !FILTERS.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!("Invalid filter '{bad}'")));
    }
    let (past, rx) = state.containers.events().subscribe(since);
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let within = move |e: &Event| until.is_none_or(|u| e.time_nano <= u);
    let past: Vec<String> = past
        .iter()
        .filter(|e| within(e) && matches(e, &filters))
        .map(line)
        .collect();
    // Live events until `until` (none if it has passed), forever without it.
    let live_for = until.map(|u| Duration::from_nanos(u.saturating_sub(now).max(0) as u64));
    let deadline = live_for.map(|d| tokio::time::Instant::now() + d);
    let live = futures_util::stream::unfold((rx, filters), move |(mut rx, filters)| async move {
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(r) => r,
                    Err(_) => return None,
                },
                None => rx.recv().await,
            };
            match next {
                Ok(e) if matches(&e, &filters) => {
                    return Some((Ok(line(&e)), (rx, filters)));
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let head = futures_util::stream::iter(past.into_iter().map(Ok::<_, std::convert::Infallible>));
    let body = futures_util::StreamExt::chain(head, live);
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_filters() {
        let e = Event::new("container", "start", "abc123")
            .with("name", "web")
            .with("image", "busybox")
            .with("tier", "front");
        let f = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), vec![v.to_owned()])]);
        assert!(matches(&e, &f("container", "web")));
        assert!(matches(&e, &f("container", "abc")));
        assert!(matches(&e, &f("image", "busybox")));
        assert!(matches(&e, &f("label", "tier=front")));
        assert!(matches(&e, &f("event", "start")));
        assert!(!matches(&e, &f("type", "image")));
        assert!(!matches(&e, &f("event", "die")));
        assert!(!matches(&e, &f("network", "abc")));
        let connect = Event::new("network", "connect", "0f3e9a")
            .with("name", "backend")
            .with("container", "abc123");
        assert!(matches(&connect, &f("network", "backend")));
        assert!(matches(&connect, &f("network", "back")));
        assert!(matches(&connect, &f("network", "0f3e")));
        assert!(!matches(&connect, &f("network", "front")));
        assert!(!matches(&connect, &f("network", "abc")));
        assert!(matches(&connect, &f("type", "network")));
        let exec = Event::new("container", "exec_create: sh -c true", "abc");
        assert!(matches(&exec, &f("event", "exec_create")));
        let m = message(&e);
        assert_eq!(m.status.as_deref(), Some("start"));
        assert_eq!(m.actor.attributes["name"], "web");
        let v: serde_json::Value = serde_json::from_str(&line(&e)).unwrap();
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["Actor"]["ID"], "abc123");
    }
}
