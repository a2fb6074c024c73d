use std::fmt;
use std::str::FromStr;

/// A Docker Engine API version, `MAJOR.MINOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Always 1 so far.
    pub major: u16,
    /// The minor version.
    pub minor: u16,
}

/// Why a requested API version is refused (moby's texts, which clients show as they are).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Not `MAJOR.MINOR`.
    #[error("invalid API version {0:?}: expected MAJOR.MINOR, e.g. 1.44")]
    Malformed(String),
    /// Older than [`ApiVersion::MIN`].
    #[error(
        "client version {0} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version",
        min = ApiVersion::MIN
    )]
    TooOld(ApiVersion),
    /// Newer than [`ApiVersion::CURRENT`].
    #[error("client version {0} is too new. Maximum supported API version is {max}", max = ApiVersion::CURRENT)]
    TooNew(ApiVersion),
}

impl ApiVersion {
    /// The version the endpoint advertises and uses for unversioned paths. 1.44 is the lowest
    /// that every docker CLI since v29.0 accepts.
    pub const CURRENT: Self = Self {
        major: 1,
        minor: 44,
    };
    /// The oldest version accepted (docker CLI ≤ v28's minimum).
    pub const MIN: Self = Self {
        major: 1,
        minor: 24,
    };

    /// Checks a version asked for in a `/v1.xx/` path prefix.
    pub fn negotiate(requested: &str) -> Result<Self, VersionError> {
        let v: Self = requested.parse()?;
        if v < Self::MIN {
            Err(VersionError::TooOld(v))
        } else if v > Self::CURRENT {
            Err(VersionError::TooNew(v))
        } else {
            Ok(v)
        }
    }
}

impl FromStr for ApiVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || VersionError::Malformed(s.to_owned());
        let (major, minor) = s.split_once('.').ok_or_else(bad)?;
        let num = |p: &str| {
            if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
                Err(bad())
            } else {
                p.parse::<u16>().map_err(|_| bad())
            }
        };
        Ok(Self {
            major: num(major)?,
            minor: num(minor)?,
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        assert_eq!(ApiVersion::negotiate("1.44").unwrap(), ApiVersion::CURRENT);
        assert_eq!(ApiVersion::negotiate("1.24").unwrap(), ApiVersion::MIN);
        assert_eq!(ApiVersion::negotiate("1.41").unwrap().to_string(), "1.41");
        assert_eq!(
            ApiVersion::negotiate("1.12").unwrap_err().to_string(),
            "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
        );
        assert_eq!(
            ApiVersion::negotiate("1.51").unwrap_err().to_string(),
            "client version 1.51 is too new. Maximum supported API version is 1.44"
        );
        for bad in ["", "1", "1.", ".4", "a.b", "1.4.4", "1.-1", "99999.1"] {
            assert!(
                matches!(ApiVersion::negotiate(bad), Err(VersionError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(ApiVersion::negotiate("1.9").is_err());
        assert!("1.100".parse::<ApiVersion>().unwrap() > ApiVersion::CURRENT);
    }
}
