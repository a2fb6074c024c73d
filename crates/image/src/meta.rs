use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

/// Why image metadata could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The database failed.
    #[error("image database: {0}")]
    Db(#[from] rusqlite::Error),
}

/// One image: its ID is the digest of its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// `sha256:...` of the config blob.
    pub id: String,
    /// The config JSON.
    pub config: Vec<u8>,
    /// Digest of the manifest it was pulled with (single-platform manifest).
    pub manifest_digest: String,
    /// Layer digests (compressed, as in the manifest), in order.
    pub layers: Vec<String>,
    /// Sum of the layer sizes.
    pub size: u64,
    /// `repo:tag` names (canonical, `docker.io/library/busybox:latest`).
    pub tags: Vec<String>,
    /// `repo@digest` names.
    pub digests: Vec<String>,
}

/// Image metadata in SQLite (WAL): one transaction per change, so a crash leaves the previous
/// or the next state.
#[derive(Debug)]
pub struct ImageStore {
    db: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    config BLOB NOT NULL,
    manifest_digest TEXT NOT NULL,
    layers TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE TABLE IF NOT EXISTS repo_digests (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE TABLE IF NOT EXISTS parents (
    image_id TEXT PRIMARY KEY REFERENCES images(id),
    parent TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS build_cache (
    parent TEXT NOT NULL,
    key TEXT NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(id),
    PRIMARY KEY (parent, key)
);
";

impl ImageStore {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        db.execute_batch(SCHEMA)?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions), so
        // the data behind a poisoned lock is still good.
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut db)
    }

    /// Records an image and points `tag` (if any) and `repo_digest` at it, atomically.
    pub fn put(
        &self,
        image: &ImageRecord,
        tag: Option<&str>,
        repo_digest: Option<&str>,
    ) -> Result<(), MetaError> {
        self.with(|db| {
            let tx = db.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO images (id, config, manifest_digest, layers, size) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    image.id,
                    image.config,
                    image.manifest_digest,
                    serde_json::to_string(&image.layers).unwrap_or_default(),
                    image.size as i64
                ],
            )?;
            if let Some(t) = tag {
                tx.execute("INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)", params![t, image.id])?;
            }
            if let Some(d) = repo_digest {
                tx.execute("INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?1, ?2)", params![d, image.id])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn load(db: &Connection, id: &str) -> Result<Option<ImageRecord>, MetaError> {
        let row = db
            .query_row(
                "SELECT id, config, manifest_digest, layers, size FROM images WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, config, manifest_digest, layers, size)) = row else {
            return Ok(None);
        };
        let names = |table: &str| -> Result<Vec<String>, MetaError> {
            let mut st = db.prepare(&format!(
                "SELECT name FROM {table} WHERE image_id = ?1 ORDER BY name"
            ))?;
            let v = st
                .query_map(params![id], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        };
        Ok(Some(ImageRecord {
            tags: names("tags")?,
            digests: names("repo_digests")?,
            id: id.clone(),
            config,
            manifest_digest,
            layers: serde_json::from_str(&layers).unwrap_or_default(),
            size: size as u64,
        }))
    }

    /// Every image, newest first by ID order of insertion.
    pub fn list(&self) -> Result<Vec<ImageRecord>, MetaError> {
        self.with(|db| {
            let ids: Vec<String> = {
                let mut st = db.prepare("SELECT id FROM images ORDER BY rowid DESC")?;
                st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            let mut out = Vec::new();
            for id in ids {
                if let Some(rec) = Self::load(db, &id)? {
                    out.push(rec);
                }
            }
            Ok(out)
        })
    }

    /// The image a tag, a `repo@digest`, a full ID or an unambiguous ID prefix names.
    pub fn resolve(
        &self,
        tag_or_digest: Option<&str>,
        id_prefix: &str,
    ) -> Result<Option<ImageRecord>, MetaError> {
        self.with(|db| {
            if let Some(name) = tag_or_digest {
                for table in ["tags", "repo_digests"] {
                    let id: Option<String> = db
                        .query_row(
                            &format!("SELECT image_id FROM {table} WHERE name = ?1"),
                            params![name],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if let Some(id) = id {
                        return Self::load(db, &id);
                    }
                }
            }
            let prefix = id_prefix.strip_prefix("sha256:").unwrap_or(id_prefix);
            if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(None);
            }
            let ids: Vec<String> = {
                let mut st = db.prepare("SELECT id FROM images WHERE id LIKE ?1 LIMIT 2")?;
                st.query_map(params![format!("sha256:{prefix}%")], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            match ids.as_slice() {
                [one] => Self::load(db, one),
                _ => Ok(None),
            }
        })
    }

    /// Points `tag` at image `id`.
    pub fn tag(&self, id: &str, tag: &str) -> Result<(), MetaError> {
        self.with(|db| {
            db.execute(
                "INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)",
                params![tag, id],
            )?;
            Ok(())
        })
    }

    /// Records that image `id` was made on this VCH from image `parent` (`docker commit`):
    /// Docker's `Parent`, and what keeps the parent from being removed while `id` exists.
    pub fn set_parent(&self, id: &str, parent: &str) -> Result<(), MetaError> {
        self.with(|db| {
            db.execute(
                "INSERT OR REPLACE INTO parents (image_id, parent) VALUES (?1, ?2)",
                params![id, parent],
            )?;
            Ok(())
        })
    }

    /// The image `id` was made from on this VCH, if any.
    pub fn parent(&self, id: &str) -> Result<Option<String>, MetaError> {
        self.with(|db| {
            Ok(db
                .query_row(
                    "SELECT parent FROM parents WHERE image_id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// Records that the build step `key` on image `parent` (empty: on nothing) made image
    /// `id`: the builder's cache.
    pub fn cache_put(&self, parent: &str, key: &str, id: &str) -> Result<(), MetaError> {
        self.with(|db| {
            db.execute(
                "INSERT OR REPLACE INTO build_cache (parent, key, image_id) VALUES (?1, ?2, ?3)",
                params![parent, key, id],
            )?;
            Ok(())
        })
    }

    /// The image build step `key` made on image `parent` before, if it is still there.
    pub fn cache_get(&self, parent: &str, key: &str) -> Result<Option<String>, MetaError> {
        self.with(|db| {
            Ok(db
                .query_row(
                    "SELECT c.image_id FROM build_cache c JOIN images i ON i.id = c.image_id \
                     WHERE c.parent = ?1 AND c.key = ?2",
                    params![parent, key],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// The images build steps made (the cache's), and the cache forgotten: `docker builder
    /// prune`.
    pub fn cache_take(&self) -> Result<Vec<String>, MetaError> {
        self.with(|db| {
            let tx = db.transaction()?;
            let ids: Vec<String> = {
                let mut st = tx.prepare("SELECT DISTINCT image_id FROM build_cache")?;
                st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            tx.execute("DELETE FROM build_cache", [])?;
            tx.commit()?;
            Ok(ids)
        })
    }

    /// How many images were made from image `id`.
    pub fn children(&self, id: &str) -> Result<u64, MetaError> {
        self.with(|db| {
            let n: i64 = db.query_row(
                "SELECT count(*) FROM parents WHERE parent = ?1",
                params![id],
                |r| r.get(0),
            )?;
            Ok(n as u64)
        })
    }

    /// Removes a tag or repo digest name; returns whether it existed.
    pub fn untag(&self, name: &str) -> Result<bool, MetaError> {
        self.with(|db| {
            let n = db.execute("DELETE FROM tags WHERE name = ?1", params![name])?
                + db.execute("DELETE FROM repo_digests WHERE name = ?1", params![name])?;
            Ok(n > 0)
        })
    }

    /// Deletes image `id` with its names; returns the layer digests no other image uses.
    pub fn delete(&self, id: &str) -> Result<Vec<String>, MetaError> {
        self.with(|db| {
            let Some(rec) = Self::load(db, id)? else {
                return Ok(Vec::new());
            };
            let tx = db.transaction()?;
            tx.execute("DELETE FROM tags WHERE image_id = ?1", params![id])?;
            tx.execute("DELETE FROM repo_digests WHERE image_id = ?1", params![id])?;
            tx.execute("DELETE FROM parents WHERE image_id = ?1", params![id])?;
            tx.execute(
                "DELETE FROM build_cache WHERE image_id = ?1 OR parent = ?1",
                params![id],
            )?;
            tx.execute("DELETE FROM images WHERE id = ?1", params![id])?;
            let mut unused = Vec::new();
            {
                let mut st = tx.prepare("SELECT layers FROM images")?;
                let others: Vec<String> =
                    st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                for layer in rec.layers {
                    if !others.iter().any(|l| l.contains(&layer)) {
                        unused.push(layer);
                    }
                }
            }
            tx.commit()?;
            Ok(unused)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, layers: &[&str]) -> ImageRecord {
        ImageRecord {
            id: id.into(),
            config: b"{}".to_vec(),
            manifest_digest: "sha256:m".into(),
            layers: layers.iter().map(|s| s.to_string()).collect(),
            size: 3,
            tags: vec![],
            digests: vec![],
        }
    }

    #[test]
    fn tags_resolve_and_delete_keeps_shared_layers() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(&dir.path().join("db")).unwrap();
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        s.put(
            &rec(&a, &["l1", "l2"]),
            Some("docker.io/library/x:latest"),
            Some("docker.io/library/x@sha256:m"),
        )
        .unwrap();
        s.put(&rec(&b, &["l2"]), Some("docker.io/library/y:1"), None)
            .unwrap();
        assert_eq!(
            s.resolve(Some("docker.io/library/x:latest"), "x")
                .unwrap()
                .unwrap()
                .id,
            a
        );
        assert_eq!(
            s.resolve(None, "aaaa").unwrap().unwrap().tags,
            vec!["docker.io/library/x:latest"]
        );
        assert!(
            s.resolve(None, "abc").unwrap().is_none(),
            "too short a prefix"
        );
        s.tag(&a, "docker.io/library/x:2").unwrap();
        assert_eq!(
            s.resolve(Some("docker.io/library/x:2"), "")
                .unwrap()
                .unwrap()
                .tags
                .len(),
            2
        );
        s.set_parent(&b, &a).unwrap();
        s.cache_put(&a, "RUN x", &b).unwrap();
        assert_eq!(
            s.cache_get(&a, "RUN x").unwrap().as_deref(),
            Some(b.as_str())
        );
        assert_eq!(s.cache_get("", "RUN x").unwrap(), None);
        assert_eq!(s.cache_take().unwrap(), vec![b.clone()]);
        assert_eq!(
            s.cache_get(&a, "RUN x").unwrap(),
            None,
            "the cache is forgotten"
        );
        s.cache_put(&a, "RUN x", &b).unwrap();
        assert_eq!(s.parent(&b).unwrap().as_deref(), Some(a.as_str()));
        assert_eq!((s.children(&a).unwrap(), s.children(&b).unwrap()), (1, 0));
        assert_eq!(s.delete(&a).unwrap(), vec!["l1"]);
        assert_eq!(s.list().unwrap().len(), 1);
        // Reopening sees the same state.
        drop(s);
        let s = ImageStore::open(&dir.path().join("db")).unwrap();
        assert_eq!(s.list().unwrap()[0].id, b);
        s.delete(&b).unwrap();
        assert_eq!(s.parent(&b).unwrap(), None, "a child's parent goes with it");
        assert_eq!(
            s.cache_get(&a, "RUN x").unwrap(),
            None,
            "and its cache entry"
        );
    }
}
