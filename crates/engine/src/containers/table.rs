//! The container table of the VCH's state database: one row per container, the record as
//! JSON beside the columns that must stay unique (ID, name). The monitor's own files (exit
//! record, pid) stay in the container's folder: the monitor writes them while the endpoint may
//! be down, and the endpoint reconciles the two when it reads a container's status.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use super::{ContainerRecord, MonitorFiles, internal};
use crate::EngineError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    record TEXT NOT NULL
);
";

#[derive(Debug)]
pub(super) struct Table {
    db: Mutex<Connection>,
}

fn db_err(e: rusqlite::Error) -> EngineError {
    internal("container table", e)
}

impl Table {
    /// The table in the state database at `path` (WAL: the image store has its own connection
    /// to the same file).
    pub(super) fn open(path: &Path) -> Result<Self, EngineError> {
        let db = Connection::open(path).map_err(db_err)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        // The image store writes to the same file: wait for its transactions.
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
        db.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        // Statements are atomic: the data behind a poisoned lock is still whole.
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&db)
    }

    pub(super) fn get(&self, id: &str) -> Result<Option<ContainerRecord>, EngineError> {
        let json: Option<String> = self.with(|db| {
            db.query_row("SELECT record FROM containers WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err)
        })?;
        json.map(|j| decode(&j)).transpose()
    }

    /// Inserts or replaces the record of `rec.id`; a name another container holds is a
    /// conflict (two creates racing for one name: one wins).
    pub(super) fn put(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        let json = serde_json::to_string(rec).map_err(|e| internal("encode", e))?;
        let done = self.with(|db| {
            Ok(db.execute(
                "INSERT INTO containers (id, name, created, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, record = excluded.record",
                params![rec.id, rec.name, rec.created, json],
            ))
        })?;
        match done {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                let other = self
                    .all()?
                    .into_iter()
                    .find(|c| c.name == rec.name && c.id != rec.id)
                    .map(|c| c.id)
                    .unwrap_or_default();
                Err(name_taken(&rec.name, &other))
            }
            Err(e) => Err(db_err(e)),
        }
    }

    /// Every container, newest first.
    pub(super) fn all(&self) -> Result<Vec<ContainerRecord>, EngineError> {
        let rows: Vec<String> = self.with(|db| {
            let mut stmt = db
                .prepare_cached("SELECT record FROM containers ORDER BY created DESC, id")
                .map_err(db_err)?;
            let rows: Result<Vec<String>, _> =
                stmt.query_map([], |r| r.get(0)).map_err(db_err)?.collect();
            rows.map_err(db_err)
        })?;
        rows.iter().map(|j| decode(j)).collect()
    }

    pub(super) fn delete(&self, id: &str) -> Result<(), EngineError> {
        self.with(|db| {
            db.execute("DELETE FROM containers WHERE id = ?1", [id])
                .map(|_| ())
                .map_err(db_err)
        })
    }

    /// Moves the records of an older VCH (`<id>/container.json` in each container's folder)
    /// into the table, once; a folder with neither a row nor a record is what a create cut
    /// short left, and goes.
    pub(super) fn adopt_folders(&self, root: &Path) -> Result<(), EngineError> {
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if self.get(&id)?.is_some() {
                continue;
            }
            let legacy = entry.path().join("container.json");
            match std::fs::read(&legacy) {
                Ok(bytes) => {
                    let rec: ContainerRecord = serde_json::from_slice(&bytes)
                        .map_err(|e| internal("unreadable container.json", e))?;
                    self.put(&rec)?;
                    let _ = std::fs::remove_file(&legacy);
                    tracing::info!(container = %id, "container record moved into the state database");
                }
                Err(_) if !MonitorFiles::new(&entry.path()).monitor_pid().exists() => {
                    let _ = std::fs::remove_dir_all(entry.path());
                    tracing::warn!(container = %id, "removed the folder of a container whose create did not finish");
                }
                Err(_) => {}
            }
        }
        Ok(())
    }
}

fn decode(json: &str) -> Result<ContainerRecord, EngineError> {
    serde_json::from_str(json).map_err(|e| internal("container record unreadable", e))
}

pub(super) fn name_taken(name: &str, other: &str) -> EngineError {
    EngineError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, name: &str, created: &str) -> ContainerRecord {
        let mut r: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "image": "busybox", "image_id": "sha256:0",
            "created": created, "path": "true", "args": [], "entrypoint": null, "cmd": null,
            "env": [], "working_dir": "/", "user": "", "hostname": "h", "labels": {},
            "started_at": null,
        }))
        .unwrap_or_else(|e| panic!("a minimal record: {e}"));
        r.name = name.to_owned();
        r
    }

    #[test]
    fn rows_are_unique_by_id_and_by_name() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let t = Table::open(&dir.path().join("state.db")).unwrap_or_else(|e| panic!("{e}"));
        t.put(&rec("a1", "web", "2026-01-01T00:00:00Z"))
            .unwrap_or_else(|e| panic!("{e}"));
        t.put(&rec("b2", "db", "2026-01-02T00:00:00Z"))
            .unwrap_or_else(|e| panic!("{e}"));
        // Newest first.
        let names: Vec<_> = t
            .all()
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["db", "web"]);
        // A second container cannot take a name; the holder can keep or change its own.
        let err = t.put(&rec("c3", "web", "2026-01-03T00:00:00Z")).err();
        assert!(
            err.as_ref().is_some_and(|e| e
                .to_string()
                .contains("is already in use by container \"a1\"")),
            "{err:?}"
        );
        t.put(&rec("a1", "web2", "2026-01-01T00:00:00Z"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.get("a1").ok().flatten().map(|r| r.name).as_deref(),
            Some("web2")
        );
        t.delete("a1").unwrap_or_else(|e| panic!("{e}"));
        assert!(t.get("a1").ok().flatten().is_none());
        // Reopened: still there.
        drop(t);
        let t = Table::open(&dir.path().join("state.db")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.all().unwrap_or_default().len(), 1);
    }

    #[test]
    fn older_folders_are_adopted_and_half_creates_swept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().join("containers");
        std::fs::create_dir_all(root.join("old1")).unwrap_or_else(|e| panic!("{e}"));
        let json =
            serde_json::to_vec(&rec("old1", "legacy", "2025-01-01T00:00:00Z")).unwrap_or_default();
        std::fs::write(root.join("old1/container.json"), json).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(root.join("half")).unwrap_or_else(|e| panic!("{e}"));
        let t = Table::open(&dir.path().join("state.db")).unwrap_or_else(|e| panic!("{e}"));
        t.adopt_folders(&root).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.get("old1").ok().flatten().map(|r| r.name).as_deref(),
            Some("legacy")
        );
        assert!(!root.join("old1/container.json").exists());
        assert!(
            root.join("old1").is_dir(),
            "its folder stays: the container lives there"
        );
        assert!(!root.join("half").exists());
    }
}
