//! Docker's stream framing: a process's standard streams multiplexed over one connection
//! (`attach`, `logs` and `exec` without a terminal), and the content types that say which
//! framing a body has.

use crate::ApiVersion;

/// Which of a process's streams a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

/// One frame of a multiplexed stream: `[stream, 0, 0, 0, length: u32 big-endian]` then the
/// payload.
pub fn frame(stream: StdStream, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[stream as u8, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A terminal's output: its bytes as they are, unframed.
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";

/// Frames made by [`frame`] (API 1.42 and later name them so).
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// The content type of a multiplexed body for a client of API `version`: older clients expect
/// the raw-stream name for frames too.
pub fn multiplexed_content_type(version: ApiVersion) -> &'static str {
    if version
        >= (ApiVersion {
            major: 1,
            minor: 42,
        })
    {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_their_names() {
        assert_eq!(
            frame(StdStream::Stderr, b"hi"),
            [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']
        );
        let v = |minor| ApiVersion { major: 1, minor };
        assert_eq!(multiplexed_content_type(v(41)), RAW_STREAM);
        assert_eq!(multiplexed_content_type(v(42)), MULTIPLEXED_STREAM);
    }
}
