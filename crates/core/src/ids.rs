//! Identifiers that name things on the host: the uid/gid map of a VCH's user namespace, and
//! the content IDs (`sha256:<64 hex>`) that name blobs and layers. Both are checked here, once,
//! before any of them becomes part of a host path or a host file's owner.

/// The size of a VCH's id range: container ids 0..65535, as Docker's `userns-remap` gives.
pub const ID_RANGE_SIZE: u32 = 65536;

/// The id a host id outside the map shows as inside it (the kernel's overflow id, `nobody`).
pub const OVERFLOW_ID: u32 = 65534;

/// How a container's uids and gids map to the host's: container id `n` is host id `base + n`
/// for `n < size`. The identity map (no user namespace) has `base` 0 and covers every id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    base: u32,
    size: u32,
}

/// Why an id map or an id cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A range that is empty or runs past the largest id.
    #[error("the id range {base}-{} is not usable: it must hold at least one id and end below 4294967295", u64::from(*base) + u64::from(*size) - 1)]
    BadRange { base: u32, size: u32 },
    /// An id the map has no host id for.
    #[error(
        "id {id} cannot be mapped into this VCH's user namespace (it maps ids 0-{}): the image uses an id above that range",
        size - 1
    )]
    Unmapped { id: u32, size: u32 },
}

impl Default for IdMap {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl IdMap {
    /// No user namespace: every id is itself.
    pub const IDENTITY: IdMap = IdMap {
        base: 0,
        size: u32::MAX,
    };

    /// Container ids `0..size` as host ids `base..base + size`.
    pub fn new(base: u32, size: u32) -> Result<Self, IdError> {
        if size == 0 || base.checked_add(size).is_none() {
            return Err(IdError::BadRange { base, size });
        }
        Ok(Self { base, size })
    }

    pub fn is_identity(&self) -> bool {
        self.base == 0 && self.size == u32::MAX
    }

    /// The first host id.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// How many ids it maps.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The host id of container id `id`.
    pub fn to_host(&self, id: u32) -> Result<u32, IdError> {
        if id < self.size {
            Ok(self.base + id)
        } else {
            Err(IdError::Unmapped {
                id,
                size: self.size,
            })
        }
    }

    /// The container id of host id `host`: [`OVERFLOW_ID`] for a host id outside the range (a
    /// file of the host's root in a host folder shows as `nobody`, as the kernel shows it).
    pub fn to_container(&self, host: u32) -> u32 {
        match host.checked_sub(self.base) {
            Some(id) if id < self.size => id,
            _ => OVERFLOW_ID,
        }
    }

    /// Whether host id `host` is one of the map's (a container's id).
    pub fn holds_host(&self, host: u32) -> bool {
        host.checked_sub(self.base).is_some_and(|id| id < self.size)
    }

    /// Whether `[base, base + size)` and `other` share an id.
    pub fn overlaps(&self, base: u32, size: u32) -> bool {
        let (a0, a1) = (
            u64::from(self.base),
            u64::from(self.base) + u64::from(self.size),
        );
        let (b0, b1) = (u64::from(base), u64::from(base) + u64::from(size));
        a0 < b1 && b0 < a1
    }
}

/// Why a content ID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {value:?} is not a content ID: it must be sha256: followed by 64 lowercase hex digits"
)]
pub struct DigestError {
    pub what: &'static str,
    pub value: String,
}

/// The 64 hex digits of `sha256:<hex>` (an image ID, a layer's diff ID, a blob digest), or why
/// `value` is not one. `what` names it in the error ("layer diff ID", "image ID").
pub fn sha256_hex<'a>(what: &'static str, value: &'a str) -> Result<&'a str, DigestError> {
    match value.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        _ => Err(DigestError {
            what,
            value: value.chars().take(100).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_shift_and_overflow() {
        let m = IdMap::new(200_000, ID_RANGE_SIZE).unwrap();
        assert_eq!(m.to_host(0), Ok(200_000));
        assert_eq!(m.to_host(65535), Ok(265_535));
        assert!(matches!(m.to_host(65536), Err(IdError::Unmapped { .. })));
        assert_eq!(m.to_container(200_005), 5);
        assert_eq!(m.to_container(0), OVERFLOW_ID);
        assert_eq!(m.to_container(265_536), OVERFLOW_ID);
        assert!(!m.is_identity());
        assert!(m.holds_host(265_535) && !m.holds_host(0) && !m.holds_host(265_536));
        assert!(IdMap::IDENTITY.is_identity());
        assert_eq!(IdMap::IDENTITY.to_host(123_456), Ok(123_456));
        assert_eq!(IdMap::IDENTITY.to_container(7), 7);
        assert!(IdMap::new(0, 0).is_err());
        assert!(IdMap::new(u32::MAX - 10, 100).is_err());
        assert!(m.overlaps(265_535, 1));
        assert!(!m.overlaps(265_536, 10));
        assert!(m.overlaps(100_000, 100_001));
        assert!(!m.overlaps(100_000, 100_000));
    }

    #[test]
    fn content_ids_are_sha256_and_64_hex() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(sha256_hex("layer", &good), Ok(&good[7..]));
        for bad in [
            "sha256:/tmp/x".to_owned(),
            "sha256:../../etc".to_owned(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}/", "a".repeat(64)),
            format!("sha512:{}", "a".repeat(64)),
            "a".repeat(64),
            String::new(),
        ] {
            let e = sha256_hex("layer diff ID", &bad).unwrap_err();
            assert!(e.to_string().contains("64 lowercase hex"), "{e}");
        }
    }
}
