//! The distribution API on top of the transport: manifests and blobs.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::client::{Credentials, empty_body, error_message, header_str};
use crate::manifest::ACCEPT;
use crate::{Reference, RegistryClient, RegistryError};

/// A manifest as fetched: its bytes, media type and digest (verified).
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The largest manifest (or index) read from a registry.
pub(crate) const MANIFEST_MAX: usize = 4 << 20;

fn pull_scope(r: &Reference) -> String {
    format!("repository:{}:pull", r.repository)
}

impl RegistryClient {
    /// Fetches the manifest `reference` (a tag or digest) of `r`'s repository and checks its
    /// digest against the digest asked for and the registry's `Docker-Content-Digest`.
    pub async fn manifest(
        &self,
        r: &Reference,
        reference: &str,
        creds: Option<&Credentials>,
    ) -> Result<FetchedManifest, RegistryError> {
        let path = format!("/v2/{}/manifests/{reference}", r.repository);
        let resp = self
            .request(
                &r.registry,
                hyper::Method::GET,
                &path,
                &[("Accept", ACCEPT.to_owned())],
                &pull_scope(r),
                creds,
                &empty_body,
            )
            .await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            let message = error_message(resp)
                .await
                .unwrap_or_else(|| "manifest unknown".into());
            return Err(RegistryError::NotFound {
                what: format!("manifest for {}", r.familiar()),
                message,
            });
        }
        if !status.is_success() {
            return Err(status_error(r, resp).await);
        }
        let media_type = header_str(&resp, "Content-Type")
            .unwrap_or_default()
            .to_owned();
        let header_digest = header_str(&resp, "Docker-Content-Digest").map(str::to_owned);
        // Read whole, so bounded (Docker's own limit for a manifest).
        let bytes = http_body_util::Limited::new(resp.into_body(), MANIFEST_MAX)
            .collect()
            .await
            .map_err(|e| RegistryError::Protocol {
                registry: r.registry.clone(),
                reason: if e.is::<http_body_util::LengthLimitError>() {
                    format!(
                        "the manifest of {} is larger than {} MiB: refused",
                        r.familiar(),
                        MANIFEST_MAX >> 20
                    )
                } else {
                    e.to_string()
                },
            })?
            .to_bytes()
            .to_vec();
        let digest = sha256_digest(&bytes);
        for expected in [
            Some(reference).filter(|x| x.starts_with("sha256:")),
            header_digest.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            if expected.starts_with("sha256:") && expected != digest {
                return Err(RegistryError::DigestMismatch {
                    registry: r.registry.clone(),
                    expected: expected.to_owned(),
                    actual: digest,
                });
            }
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Starts downloading blob `digest` of `r`'s repository. The caller streams the body and
    /// verifies the digest.
    pub async fn blob(
        &self,
        r: &Reference,
        digest: &str,
        creds: Option<&Credentials>,
    ) -> Result<Response<Incoming>, RegistryError> {
        let resp = self
            .blob_request(r, digest, hyper::Method::GET, &pull_scope(r), creds)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::NOT_FOUND => Err(RegistryError::NotFound {
                what: format!("blob {digest} of {}", r.familiar_repository()),
                message: error_message(resp).await.unwrap_or_default(),
            }),
            s if s.is_redirection() => {
                let location = header_str(&resp, "Location").unwrap_or_default().to_owned();
                let resp = self.follow_blob_redirect(&r.registry, &location).await?;
                if resp.status().is_success() {
                    Ok(resp)
                } else {
                    Err(status_error(r, resp).await)
                }
            }
            _ => Err(status_error(r, resp).await),
        }
    }

    /// `method` on blob `digest` of `r`'s repository, with the token for `scope`.
    async fn blob_request(
        &self,
        r: &Reference,
        digest: &str,
        method: hyper::Method,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<Response<Incoming>, RegistryError> {
        let path = format!("/v2/{}/blobs/{digest}", r.repository);
        self.request(&r.registry, method, &path, &[], scope, creds, &empty_body)
            .await
    }
}

async fn status_error(r: &Reference, resp: Response<Incoming>) -> RegistryError {
    let status = resp.status().as_u16();
    let message = error_message(resp).await.unwrap_or_default();
    RegistryError::Status {
        registry: r.registry.clone(),
        status,
        message,
    }
}

fn push_scope(r: &Reference) -> String {
    format!("repository:{}:pull,push", r.repository)
}

impl RegistryClient {
    /// Whether the registry already has blob `digest` in `r`'s repository.
    pub async fn blob_exists(
        &self,
        r: &Reference,
        digest: &str,
        creds: Option<&Credentials>,
    ) -> Result<bool, RegistryError> {
        let resp = self
            .blob_request(r, digest, hyper::Method::HEAD, &push_scope(r), creds)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(r, resp).await),
        }
    }

    /// Uploads the blob stored at `file` (monolithic upload: POST, then PUT with the digest).
    pub async fn upload_blob(
        &self,
        r: &Reference,
        digest: &str,
        size: u64,
        file: std::path::PathBuf,
        creds: Option<&Credentials>,
    ) -> Result<(), RegistryError> {
        let scope = push_scope(r);
        let start = format!("/v2/{}/blobs/uploads/", r.repository);
        let resp = self
            .request(
                &r.registry,
                hyper::Method::POST,
                &start,
                &[],
                &scope,
                creds,
                &empty_body,
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(r, resp).await);
        }
        let location = header_str(&resp, "Location")
            .ok_or_else(|| RegistryError::Protocol {
                registry: r.registry.clone(),
                reason: "upload started without a Location".into(),
            })?
            .to_owned();
        // Absolute or relative; only its path and query matter (same registry).
        let path = match location.split_once("://") {
            Some((_, rest)) => rest
                .find('/')
                .map_or("/".to_owned(), |i| rest[i..].to_owned()),
            None => location,
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let put = format!("{path}{sep}digest={}", digest.replace(':', "%3A"));
        let headers = [
            ("Content-Type", "application/octet-stream".to_owned()),
            ("Content-Length", size.to_string()),
        ];
        let body = move || crate::client::file_body(file.clone());
        let resp = self
            .request(
                &r.registry,
                hyper::Method::PUT,
                &put,
                &headers,
                &scope,
                creds,
                &body,
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(r, resp).await);
        }
        Ok(())
    }

    /// Puts a manifest under `reference` (a tag) and returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        r: &Reference,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
        creds: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        let path = format!("/v2/{}/manifests/{reference}", r.repository);
        let headers = [
            ("Content-Type", media_type.to_owned()),
            ("Content-Length", bytes.len().to_string()),
        ];
        let bytes = hyper::body::Bytes::from(bytes);
        let body = move || crate::client::bytes_body(bytes.clone());
        let resp = self
            .request(
                &r.registry,
                hyper::Method::PUT,
                &path,
                &headers,
                &push_scope(r),
                creds,
                &body,
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(r, resp).await);
        }
        Ok(header_str(&resp, "Docker-Content-Digest")
            .unwrap_or_default()
            .to_owned())
    }
}
