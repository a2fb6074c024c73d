/// The product version (workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binaries were built from, or `unknown`.
pub const GIT_COMMIT: &str = env!("VIC_GIT_COMMIT");

/// `v<version>-<commit>`, VIC's `ShortVersion` shape (version, then the commit after the last `-`).
pub fn short_version() -> String {
    format!("v{VERSION}-{GIT_COMMIT}")
}
