//! The one way vic replaces a file: readers see the old file or the new one, never half of one,
//! and a crash leaves one of the two.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `bytes` to a temporary file beside `path` (created with `mode`, whatever the umask),
/// syncs it, renames it over `path` and syncs the folder.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write_whole(path, bytes, mode, true)
}

/// [`write_atomic`] without the syncs: readers still see the old file or the new one, but a
/// crash of the host may leave either, or an empty file. For what means nothing after a crash
/// (a health record, the records of a container that goes at its exit).
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write_whole(path, bytes, mode, false)
}

fn write_whole(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Named by process: two processes replacing one file never share a temporary file.
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if sync && let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_is_replaced_whole_with_its_mode() {
        let dir = std::env::temp_dir().join(format!("vic-core-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.json");
        super::write_atomic(&f, b"one", 0o600).unwrap();
        super::write_atomic(&f, b"two", 0o640).unwrap();
        super::replace(&f, b"three", 0o600).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"three");
        super::write_atomic(&f, b"two", 0o640).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // Nothing else left beside it.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
