use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::PkiError;

/// Writes a private key (or any secret): mode 0600 from the moment the file exists.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    write_atomic(path, bytes, 0o600)
}

/// Writes a certificate or other public file with mode 0644.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    write_atomic(path, bytes, 0o644)
}

/// Writes `bytes` to a temporary file beside `path` (created with `mode`), syncs it and renames
/// it over `path`, so that readers see the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    vic_core::fs::write_atomic(path, bytes, mode).map_err(|source| PkiError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Creates `path` (and its parents) with mode 0700, or tightens an existing folder to 0700.
pub fn create_private_dir(path: &Path) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(err)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn modes_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        create_private_dir(&sub).unwrap();
        assert_eq!(fs::metadata(&sub).unwrap().mode() & 0o777, 0o700);
        let key = sub.join("key.pem");
        write_private(&key, b"secret").unwrap();
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        let cert = sub.join("cert.pem");
        write_public(&cert, b"cert").unwrap();
        assert_eq!(fs::metadata(&cert).unwrap().mode() & 0o777, 0o644);
        write_public(&cert, b"cert2").unwrap();
        assert_eq!(fs::read(&cert).unwrap(), b"cert2");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&sub).unwrap().count(), 2);
    }
}
