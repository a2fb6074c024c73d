use std::fmt;

/// VIC's display-name limit (`Display name %s exceeds the permitted 31 characters limit`).
const MAX_LEN: usize = 31;

/// Characters VIC refuses in a VCH name.
const FORBIDDEN: &[char] = &[
    '%', '&', '*', '$', '#', '@', '!', '\\', '/', ':', '?', '"', '<', '>', ';', '\'', '|',
];

/// The name of a virtual container host: the key of its state folder and of its certificate folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VchName(String);

/// Why a VCH name was refused. The texts are VIC's, so scripts written for VIC keep matching.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("--name must not be empty")]
    Empty,
    #[error(
        "--name contains unsupported characters: unsupported character {ch:?} in {name:?} \
         Allowed characters are alphanumeric, space and symbols - _ ( )"
    )]
    UnsupportedCharacter { ch: char, name: String },
    #[error(
        "Display name {0} exceeds the permitted 31 characters limit. Please use a shorter -name parameter"
    )]
    TooLong(String),
    #[error("--name {0:?} is reserved: it would name a folder outside the state root")]
    Reserved(String),
}

impl VchName {
    /// Validates a name with VIC's rules, plus what a folder name needs (no `.`/`..`,
    /// no control characters).
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.trim().is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(ch) = name
            .chars()
            .find(|c| FORBIDDEN.contains(c) || c.is_control())
        {
            return Err(NameError::UnsupportedCharacter {
                ch,
                name: name.to_owned(),
            });
        }
        if name.chars().count() > MAX_LEN {
            return Err(NameError::TooLong(name.to_owned()));
        }
        if name == "." || name == ".." {
            return Err(NameError::Reserved(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_vic_names() {
        for ok in [
            "vch1",
            "my vch",
            "a-b_c(d)",
            "virtual-container-host",
            "x.y",
        ] {
            assert_eq!(VchName::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_with_vic_messages() {
        let err = VchName::new("a/b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--name contains unsupported characters: unsupported character '/' in \"a/b\" \
             Allowed characters are alphanumeric, space and symbols - _ ( )"
        );
        let long = "v".repeat(32);
        assert!(
            VchName::new(&long)
                .unwrap_err()
                .to_string()
                .contains("exceeds the permitted 31 characters limit")
        );
        assert_eq!(VchName::new(&"v".repeat(31)).unwrap().as_str().len(), 31);
        assert_eq!(VchName::new("").unwrap_err(), NameError::Empty);
        assert_eq!(
            VchName::new("..").unwrap_err(),
            NameError::Reserved("..".into())
        );
        assert!(matches!(
            VchName::new("a\nb").unwrap_err(),
            NameError::UnsupportedCharacter { ch: '\n', .. }
        ));
    }
}
