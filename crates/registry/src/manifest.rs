//! Manifests, indexes and image configurations, Docker schema 2 and OCI, as far as a VCH
//! reads them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Everything a pull accepts, for the `Accept` header.
pub const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// A platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (either flavour).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A manifest list or image index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// What a manifest request returned.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// A single-platform image.
    Image(ImageManifest),
    /// Several platforms.
    Index(ImageIndex),
}

impl Manifest {
    /// Parses a manifest body by its media type (the header, else the body's own field).
    pub fn parse(media_type: &str, body: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            #[serde(default)]
            schema_version: u32,
            #[serde(default)]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Option<serde_json::Value>,
        }
        let probe: Probe =
            serde_json::from_slice(body).map_err(|e| format!("manifest is not JSON: {e}"))?;
        if probe.schema_version == 1 {
            return Err("schema 1 manifests are not supported (deprecated by Docker); push the image again with a current client".into());
        }
        let mt = if media_type.is_empty() || media_type == "application/json" {
            probe.media_type.clone().unwrap_or_default()
        } else {
            media_type
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let is_index = mt == DOCKER_MANIFEST_LIST
            || mt == OCI_INDEX
            || (mt.is_empty() && probe.manifests.is_some());
        if is_index {
            serde_json::from_slice(body)
                .map(Self::Index)
                .map_err(|e| format!("bad image index: {e}"))
        } else {
            serde_json::from_slice(body)
                .map(Self::Image)
                .map_err(|e| format!("bad image manifest: {e}"))
        }
    }
}

// Each struct below fills every missing field with its own default (`serde(default)` on the
// struct, with `Default` derived): images leave out whatever they do not set.

/// The parts of an image configuration a VCH uses (the raw JSON is kept for inspect).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub created: Option<String>,
    pub author: Option<String>,
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    pub history: Vec<History>,
}

/// The runtime defaults of an image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub user: Option<String>,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub env: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub working_dir: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
}

/// `rootfs` of an image configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

/// One `history` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

/// Picks the manifest for `os/arch[/variant]` from an index (exact variant first, then any).
pub fn select_platform<'a>(
    index: &'a ImageIndex,
    os: &str,
    arch: &str,
    variant: Option<&str>,
) -> Option<&'a Descriptor> {
    let candidates = || {
        index.manifests.iter().filter(move |d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == arch)
        })
    };
    candidates()
        .find(|d| {
            variant.is_none() || d.platform.as_ref().and_then(|p| p.variant.as_deref()) == variant
        })
        .or_else(|| candidates().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_select() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,"platform":{"architecture":"arm64","os":"linux"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}"#;
        let Manifest::Index(i) = Manifest::parse("", index).unwrap() else {
            panic!()
        };
        assert_eq!(
            select_platform(&i, "linux", "amd64", None).unwrap().digest,
            "sha256:bb"
        );
        assert!(select_platform(&i, "linux", "s390x", None).is_none());
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:cc","size":2},"layers":[]}"#;
        assert!(matches!(
            Manifest::parse(DOCKER_MANIFEST, m).unwrap(),
            Manifest::Image(_)
        ));
        assert!(
            Manifest::parse("", br#"{"schemaVersion":1}"#)
                .unwrap_err()
                .contains("schema 1")
        );
    }
}
