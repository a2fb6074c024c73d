//! Volumes as containers use them: created through the service, removed with their
//! containers (anonymous ones), pruned, refused while in use.

use super::*;

impl ContainerService {
    /// `docker volume create`.
    pub fn create_volume(&self, req: crate::VolumeRequest) -> Result<crate::Volume, EngineError> {
        let existed = req
            .name
            .as_ref()
            .is_some_and(|n| self.volumes.get(n).is_ok());
        let v = self.volumes.create(req)?;
        if !existed {
            self.emit_volume("create", &v.name, &[]);
        }
        Ok(v)
    }

    /// Removes the anonymous volumes of `rec` that no other container uses.
    pub(super) fn remove_anonymous_volumes(&self, rec: &ContainerRecord) {
        for name in rec.mounts.iter().filter_map(|m| m.name.as_ref()) {
            let anonymous = self.volumes.get(name).is_ok_and(|v| v.anonymous);
            if anonymous && self.volume_users(name).iter().all(|u| *u == rec.id) {
                match self.volumes.remove(name) {
                    Ok(()) => self.emit_volume("destroy", name, &[]),
                    Err(e) => {
                        tracing::warn!(volume = %name, error = %e, "cannot remove anonymous volume");
                    }
                }
            }
        }
    }

    /// The containers that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|c| c.mounts.iter().any(|m| m.name.as_deref() == Some(name)))
            .map(|c| c.id)
            .collect()
    }

    /// `docker volume rm`: refused while a container uses the volume.
    pub fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let v = self.volumes.get(name)?;
        let users = self.volume_users(&v.name);
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.volumes.remove(&v.name)?;
        self.emit_volume("destroy", &v.name, &[]);
        Ok(())
    }

    /// `docker volume prune`: unused volumes (anonymous ones only unless `all`); returns the
    /// names and the bytes freed. Only volumes `keep` selects are considered.
    pub fn prune_volumes(
        &self,
        all: bool,
        keep: &dyn Fn(&crate::Volume) -> bool,
    ) -> Result<(Vec<String>, u64), EngineError> {
        let mut gone = Vec::new();
        let mut freed = 0;
        for v in self.volumes.list() {
            if (all || v.anonymous) && keep(&v) && self.volume_users(&v.name).is_empty() {
                let size = self.volumes.size(&v);
                self.volumes.remove(&v.name)?;
                self.emit_volume("destroy", &v.name, &[]);
                freed += size;
                gone.push(v.name);
            }
        }
        Ok((gone, freed))
    }

    /// The volume service.
    pub fn volumes(&self) -> &Arc<VolumeService> {
        &self.volumes
    }
}
