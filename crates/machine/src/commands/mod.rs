pub(crate) mod cert;
pub(crate) mod configure;
pub(crate) mod containment;
pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod inspect;
pub(crate) mod json;
pub(crate) mod lifecycle;
pub(crate) mod logs;
pub(crate) mod ls;
pub(crate) mod metrics;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `path` made absolute against the current directory (without resolving symlinks).
pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(Error::io("cannot resolve", path))
}
