//! `docker push`: the blobs a registry lacks, then the manifest.

use super::*;

impl ImageService {
    /// `docker push`: uploads the image's blobs that the registry lacks, then its manifest
    /// under the reference's tag. The registry policy applies as for pulls.
    pub async fn push(
        &self,
        name: &str,
        creds: Option<Credentials>,
        events: &mpsc::Sender<PullEvent>,
    ) -> Result<(), EngineError> {
        let reference: Reference = name.parse()?;
        let rec = self
            .meta
            .resolve(Some(&reference.to_string()), "")?
            .ok_or_else(|| EngineError::NotTagged(reference.familiar_repository()))?;
        let creds = creds.or_else(|| self.stored_creds(&reference.registry));
        let creds = creds.as_ref();
        let client = self.registry();
        let bytes = self
            .content
            .read(&rec.manifest_digest)
            .map_err(|_| crate::error::ImageError::NoStoredManifest(reference.familiar()))?;
        let manifest: vic_registry::manifest::ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::Internal(format!("stored manifest unreadable: {e}")))?;
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| vic_registry::manifest::OCI_MANIFEST.to_owned());
        // Ask the policy before saying anything, as for pulls.
        let first = manifest
            .layers
            .first()
            .map_or(manifest.config.digest.clone(), |l| l.digest.clone());
        client.blob_exists(&reference, &first, creds).await?;
        say(
            events,
            None,
            format!(
                "The push refers to repository [{}/{}]",
                reference.registry, reference.repository
            ),
        )
        .await;
        for layer in manifest.layers.iter().rev() {
            say(events, Some(short(&layer.digest)), "Preparing".into()).await;
        }
        for layer in manifest.layers.iter().rev() {
            let id = short(&layer.digest);
            if client.blob_exists(&reference, &layer.digest, creds).await? {
                say(events, Some(id), "Layer already exists".into()).await;
                continue;
            }
            let _ = events
                .send(PullEvent::Progress {
                    id: id.clone(),
                    action: "Pushing",
                    current: 0,
                    total: layer.size,
                })
                .await;
            client
                .upload_blob(
                    &reference,
                    &layer.digest,
                    layer.size,
                    self.content.path(&layer.digest)?,
                    creds,
                )
                .await?;
            say(events, Some(id), "Pushed".into()).await;
        }
        if !client
            .blob_exists(&reference, &manifest.config.digest, creds)
            .await?
        {
            client
                .upload_blob(
                    &reference,
                    &manifest.config.digest,
                    manifest.config.size,
                    self.content.path(&manifest.config.digest)?,
                    creds,
                )
                .await?;
        }
        let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
        let size = bytes.len();
        let digest = client
            .put_manifest(&reference, &tag, &media_type, bytes, creds)
            .await?;
        let digest = if digest.is_empty() {
            rec.manifest_digest.clone()
        } else {
            digest
        };
        say(
            events,
            None,
            format!("{tag}: digest: {digest} size: {size}"),
        )
        .await;
        tracing::info!(image = %reference.familiar(), %digest, "image pushed");
        self.emit("push", &reference.familiar(), &reference.familiar());
        Ok(())
    }
}
