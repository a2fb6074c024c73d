//! How many layers download at once: a few in the whole VCH (Docker's
//! `max-concurrent-downloads`, daemon-wide too), and fewer from any one registry, so that a
//! registry that sends slowly (allowed by the policy, but in an image author's hands) leaves a
//! download slot to every other registry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Layers downloading at once in the whole VCH (Docker's default).
pub(super) const VCH_DOWNLOADS: usize = 3;

/// Of those, from one registry.
pub(super) const REGISTRY_DOWNLOADS: usize = 2;

#[derive(Debug)]
pub(super) struct DownloadSlots {
    vch: Arc<Semaphore>,
    /// One semaphore per registry with a download under way or waiting; removed with its last
    /// slot, so the map holds no more registries than there are downloads.
    registries: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A download's right to run: dropped, it frees its registry's slot and the VCH's.
#[derive(Debug)]
pub(super) struct Slot<'a> {
    slots: &'a DownloadSlots,
    registry: String,
    permits: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

impl Default for DownloadSlots {
    fn default() -> Self {
        Self {
            vch: Arc::new(Semaphore::new(VCH_DOWNLOADS)),
            registries: Mutex::new(HashMap::new()),
        }
    }
}

impl DownloadSlots {
    /// A slot now, if one is free for `registry`.
    pub(super) fn try_acquire(&self, registry: &str) -> Option<Slot<'_>> {
        let own = self.registry_semaphore(registry);
        let slot = match (
            own.try_acquire_owned(),
            self.vch.clone().try_acquire_owned(),
        ) {
            (Ok(r), Ok(v)) => Some((r, v)),
            _ => None,
        };
        let slot = Slot {
            slots: self,
            registry: registry.to_owned(),
            permits: slot,
        };
        // Without permits, dropping it only forgets the registry if nobody else holds it.
        slot.permits.is_some().then_some(slot)
    }

    /// A slot, once one is free for `registry`: its registry's first, then the VCH's, so that
    /// a download held back by its registry holds none of the VCH's.
    pub(super) async fn acquire(&self, registry: &str) -> Slot<'_> {
        let own = self.registry_semaphore(registry);
        let mut slot = Slot {
            slots: self,
            registry: registry.to_owned(),
            permits: None,
        };
        // Never closed: both semaphores live as long as `self`.
        let r = own.acquire_owned().await.expect("never closed");
        let v = self
            .vch
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        slot.permits = Some((r, v));
        slot
    }

    fn registry_semaphore(&self, registry: &str) -> Arc<Semaphore> {
        let mut map = self.registries.lock().unwrap_or_else(|p| p.into_inner());
        // Registries nobody holds or waits for any more (a waiter given up on) go first.
        map.retain(|_, s| Arc::strong_count(s) > 1);
        map.entry(registry.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(REGISTRY_DOWNLOADS)))
            .clone()
    }

    #[cfg(test)]
    fn registries(&self) -> usize {
        self.registries.lock().unwrap().len()
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.permits = None;
        let mut map = self
            .slots
            .registries
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Only the map holds it: no download of this registry runs or waits.
        if map
            .get(&self.registry)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            map.remove(&self.registry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_registry_never_holds_every_slot() {
        let slots = DownloadSlots::default();
        let a1 = slots.try_acquire("slow.example").unwrap();
        let a2 = slots.try_acquire("slow.example").unwrap();
        // A third from the same registry waits, though the VCH has a slot left...
        assert!(slots.try_acquire("slow.example").is_none());
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            slots.acquire("slow.example"),
        )
        .await;
        assert!(waiting.is_err());
        // ...which another registry gets.
        let b = slots.try_acquire("other.example").unwrap();
        assert!(slots.try_acquire("third.example").is_none());
        drop(b);
        let c = slots.acquire("third.example").await;
        drop((a1, a2, c));

        // Nothing runs: no registry is remembered.
        assert_eq!(slots.registries(), 0);
    }
}
