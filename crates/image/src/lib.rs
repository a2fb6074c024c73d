//! The VCH's image store.
//!
//! [`ContentStore`] keeps blobs by digest; a blob becomes visible only after its bytes were
//! hashed and matched its digest (write to a temporary file, verify, fsync, rename), so a pull
//! killed at any moment leaves nothing half-written behind a digest. [`ImageStore`] keeps image
//! metadata (configs, manifests, tags) in the VCH's SQLite database, one transaction per change.

mod content;
mod meta;
mod unpack;

pub use content::{ContentError, ContentStore, Ingest};
pub use meta::{ImageRecord, ImageStore, MetaError};
pub use unpack::{
    Feed, FeedReader, LayerStore, StagedLayer, UnpackError, UnpackStats, clean_entry_path,
    ensure_room, unpack_layer, unpack_stream,
};
