//! Docker's detach keys (`--detach-keys`, `detachKeys`): the sequence that ends an attach to a
//! container or exec with a terminal, the container going on.

/// Docker's detach keys (`--detach-keys`, default `ctrl-p,ctrl-q`): the sequence ends the attach
/// and is not passed on; a partial match is held back until it is decided.
#[derive(Debug, Clone)]
pub(crate) struct DetachKeys {
    keys: Vec<u8>,
    matched: usize,
}

/// Docker's default, `ctrl-p,ctrl-q`.
impl Default for DetachKeys {
    fn default() -> Self {
        Self {
            keys: vec![16, 17],
            matched: 0,
        }
    }
}

impl DetachKeys {
    /// Parses `ctrl-p,ctrl-q` style specs (Docker's grammar: `ctrl-<a-z@[\]^_>` or one
    /// character per comma-separated item).
    pub(crate) fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for item in spec.split(',') {
            let key = match item.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let c = c.as_bytes()[0].to_ascii_lowercase();
                    match c {
                        b'a'..=b'z' => c - b'a' + 1,
                        b'@' => 0,
                        b'[' => 27,
                        b'\\' => 28,
                        b']' => 29,
                        b'^' => 30,
                        b'_' => 31,
                        _ => return Err(format!("Unknown character: '{}'", c as char)),
                    }
                }
                None if item.len() == 1 => item.as_bytes()[0],
                _ => return Err(format!("Unknown character: '{item}'")),
            };
            keys.push(key);
        }
        Ok(Self { keys, matched: 0 })
    }

    /// Feeds input; returns what to pass on, and whether the sequence was typed.
    pub(crate) fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // A broken partial match: what was held back was ordinary input after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if self.keys.first() == Some(&b) {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        let mut d = DetachKeys::parse("ctrl-p,ctrl-q").unwrap();
        assert_eq!(d.feed(b"ab"), (b"ab".to_vec(), false));
        // A partial match waits, then turns out to be input.
        assert_eq!(d.feed(&[16]), (vec![], false));
        assert_eq!(d.feed(b"x"), (vec![16, b'x'], false));
        // Split across reads.
        assert_eq!(d.feed(&[b'1', 16]), (b"1".to_vec(), false));
        assert_eq!(d.feed(&[17, b'z']), (vec![], true));
        // ctrl-p ctrl-p ctrl-q: the first ctrl-p is input.
        let mut d = DetachKeys::parse("ctrl-p,ctrl-q").unwrap();
        assert_eq!(d.feed(&[16, 16, 17]), (vec![16], true));
        assert_eq!(DetachKeys::parse("a,ctrl-[").unwrap().keys, vec![b'a', 27]);
        assert!(DetachKeys::parse("ctrl-1").is_err());
        assert!(DetachKeys::parse("shift-a").is_err());
        assert_eq!(
            DetachKeys::default().keys,
            DetachKeys::parse("ctrl-p,ctrl-q").unwrap().keys
        );
    }
}
