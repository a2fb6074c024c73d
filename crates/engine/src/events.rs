//! The VCH's event stream (`docker events`): what happened to containers, images and volumes,
//! kept in memory (the last [`KEPT`] events, for `--since`) and broadcast to live listeners.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

/// How many past events are kept for `--since`.
pub(crate) const KEPT: usize = 1024;

/// One event, in the terms of Docker's `events` messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `container`, `image`, `volume`.
    pub kind: &'static str,
    /// `create`, `start`, `die`, `destroy`, `pull`, ...
    pub action: String,
    /// The object's ID (or name, for images and volumes, as Docker does).
    pub id: String,
    /// `name`, `image`, `exitCode`, labels, ...
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nano: i128,
}

impl Event {
    /// An event happening now.
    pub fn new(kind: &'static str, action: &str, id: &str) -> Self {
        Self {
            kind,
            action: action.to_owned(),
            id: id.to_owned(),
            attributes: BTreeMap::new(),
            time_nano: vic_core::time::now_nanos(),
        }
    }

    /// With attribute `key=value`.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.attributes.insert(key.to_owned(), value.into());
        self
    }
}

/// Publishes events and hands out their history and live stream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: broadcast::Sender<Event>,
    kept: Mutex<VecDeque<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                tx: broadcast::channel(KEPT).0,
                kept: Mutex::new(VecDeque::with_capacity(KEPT)),
            }),
        }
    }
}

impl EventBus {
    /// Records and broadcasts `event`.
    pub fn publish(&self, event: Event) {
        tracing::debug!(kind = event.kind, action = %event.action, id = %event.id, "event");
        if let Ok(mut kept) = self.inner.kept.lock() {
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back(event.clone());
        }
        // No listener is not an error.
        let _ = self.inner.tx.send(event);
    }

    /// The kept events at or after `since_nano`, and a receiver for what comes next (taken
    /// under the same lock, so nothing falls between the two).
    pub fn subscribe(&self, since_nano: Option<i128>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let kept = self.inner.kept.lock();
        let rx = self.inner.tx.subscribe();
        let past = match (since_nano, kept) {
            (Some(since), Ok(k)) => k.iter().filter(|e| e.time_nano >= since).cloned().collect(),
            _ => Vec::new(),
        };
        (past, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_and_live() {
        let bus = EventBus::default();
        let first = Event::new("container", "create", "a");
        let t = first.time_nano;
        bus.publish(first);
        bus.publish(Event::new("container", "start", "a").with("name", "web"));
        let (past, mut rx) = bus.subscribe(Some(t));
        assert_eq!(past.len(), 2);
        assert_eq!(past[1].attributes["name"], "web");
        assert!(bus.subscribe(None).0.is_empty());
        bus.publish(Event::new("container", "die", "a"));
        assert_eq!(rx.try_recv().unwrap().action, "die");
        for i in 0..KEPT + 5 {
            bus.publish(Event::new("image", "pull", &i.to_string()));
        }
        assert_eq!(bus.subscribe(Some(0)).0.len(), KEPT);
    }
}
