//! Images on the wire: `docker images`, `inspect`, `history`, `rmi`, `image prune`, and the
//! JSON messages that pull, push and load stream.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One image of `GET /images/json` (and of `system df`, with `Containers` counted).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: u64,
    /// -1: not computed.
    pub shared_size: i64,
    pub virtual_size: u64,
    /// `null` without any.
    pub labels: Option<BTreeMap<String, String>>,
    /// -1: not computed.
    pub containers: i64,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    /// The container an image was committed from (Docker's legacy field; empty otherwise).
    pub container: String,
    /// That container's config (`null` for other images).
    pub container_config: Option<Value>,
    /// RFC 3339, from the image's config.
    pub created: String,
    pub docker_version: String,
    pub author: String,
    /// The image's container config as its config holds it.
    pub config: Option<Value>,
    pub architecture: String,
    pub variant: Option<String>,
    pub os: String,
    pub size: u64,
    pub virtual_size: u64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: ImageMetadata,
}

/// `GraphDriver` of an image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: HashMap<String, String>,
}

/// `RootFS` of an image: its layers' diff IDs, bottom first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub typ: String,
    pub layers: Vec<String>,
}

/// `Metadata` of an image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    pub last_tag_time: String,
}

/// One line of `docker history`, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    /// `null` on lines without tags.
    pub tags: Option<Vec<String>>,
    pub size: u64,
    pub comment: String,
}

/// One thing `docker rmi` or `image prune` did: a name untagged or an image deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageDeleteItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// `docker image prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagePruneResponse {
    /// `null` when nothing went.
    pub images_deleted: Option<Vec<ImageDeleteItem>>,
    pub space_reclaimed: u64,
}

/// One line of a pull's, push's or load's progress (Docker's `JSONMessage`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// Build and load output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A build's result (`{"ID": "sha256:..."}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<Value>,
}

impl JsonMessage {
    /// A failure in the middle of a stream (the status was sent already).
    pub fn failure(message: String) -> Self {
        Self {
            error_detail: Some(ErrorDetail {
                code: None,
                message: message.clone(),
            }),
            error: Some(message),
            ..Self::default()
        }
    }

    /// The message as one line of a stream.
    pub fn line(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec(self).unwrap_or_default();
        b.push(b'\n');
        b
    }
}

/// Bytes moved so far of a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressDetail {
    pub current: u64,
    pub total: u64,
}

/// `errorDetail` of a [`JsonMessage`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A failed build step's exit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_only_what_they_say() {
        let m = JsonMessage {
            status: Some("Downloading".into()),
            id: Some("abc".into()),
            progress_detail: Some(ProgressDetail {
                current: 1,
                total: 2,
            }),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"status": "Downloading", "id": "abc", "progressDetail": {"current": 1, "total": 2}})
        );
        assert_eq!(
            serde_json::to_value(JsonMessage::failure("no".into())).unwrap(),
            serde_json::json!({"error": "no", "errorDetail": {"message": "no"}})
        );
        let untagged = ImageDeleteItem {
            untagged: Some("a:b".into()),
            deleted: None,
        };
        assert_eq!(
            serde_json::to_value(untagged).unwrap(),
            serde_json::json!({"Untagged": "a:b"})
        );
    }
}
