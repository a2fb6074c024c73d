//! The protocol between the endpoint and a container's monitor (`vic-monitor`), written once
//! for both sides: how the monitor is started ([`MonitorConfig`]), the line it answers with
//! ([`StartReport`]), the frames its control socket takes ([`Control`]), and the files it keeps
//! in the container's folder ([`MonitorFiles`], [`ExitRecord`]).
//!
//! The two sides are separate processes of possibly different builds (a monitor outlives the
//! endpoint that started it, and an upgraded endpoint reads an old monitor's files), so what is
//! here changes only in ways both can read.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;

use crate::health::HealthProbe;
pub use crate::held::HeldPort;
use crate::logfile::LogLimits;

mod files;
pub use files::{ExitRecord, MonitorFiles};

/// How the endpoint starts a monitor: `vic-monitor [--tty] [--stdin] [--sandbox-userns=ID]
/// [--dhcp=IFACE] [--hold=PROTO:IP:PORT]... [--health=JSON] [--log=JSON] [--dns=JSON] RUNTIME
/// RUNTIME_ROOT ID BUNDLE STATE_DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// The container has a terminal (runc's console socket hands the master to the monitor).
    pub tty: bool,
    /// The container's standard input stays open (a pipe fed from the control socket).
    pub stdin: bool,
    /// The runtime itself runs inside the container's user namespace (pinned at
    /// [`MonitorFiles::userns`]), whose root is this host id: gVisor's runsc, which cannot be
    /// handed a user namespace.
    pub sandbox_owner: Option<u32>,
    /// The container's interface holds a DHCP lease ([`MonitorFiles::dhcp_lease`], in the
    /// namespace pinned at [`MonitorFiles::netns`]): the monitor renews it while the
    /// container runs, the endpoint up or not, and releases it when the container exits.
    pub dhcp: Option<String>,
    /// The host ports the container publishes: the monitor binds each in the host's network
    /// namespace before the container starts and keeps them until it ends.
    pub hold: Vec<HeldPort>,
    /// The container's healthcheck: the monitor runs it (`runc exec`) and records the health
    /// at [`MonitorFiles::health`], the endpoint up or not.
    pub health: Option<HealthProbe>,
    /// How big the container's log may grow (`--log-opt max-size`/`max-file`).
    pub log: LogLimits,
    /// The container is removed at its exit (`--rm`): its log and exit record are not synced
    /// to disk, as nothing of it is kept past the exit.
    pub ephemeral: bool,
    /// The container's embedded name server (on a user-defined network): the monitor serves
    /// 127.0.0.11:53 in the namespace pinned at [`MonitorFiles::netns`] from the names in
    /// [`MonitorFiles::dns_record`], and forwards other questions to these upstream servers.
    pub dns: Option<Vec<std::net::IpAddr>>,
    /// The OCI runtime binary.
    pub runtime: PathBuf,
    /// The runtime's state root (one per VCH).
    pub runtime_root: PathBuf,
    /// The container's ID, as the runtime knows it.
    pub id: String,
    /// The OCI bundle.
    pub bundle: PathBuf,
    /// The container's folder, where the monitor keeps [`MonitorFiles`].
    pub state: PathBuf,
}

const USAGE: &str = "usage: vic-monitor [--tty] [--stdin] [--ephemeral] [--sandbox-userns=ID] [--dhcp=IFACE] [--hold=PROTO:IP:PORT]... [--health=JSON] [--log=JSON] [--dns=JSON] RUNTIME RUNTIME_ROOT ID BUNDLE STATE_DIR";

impl MonitorConfig {
    /// The monitor's command-line arguments.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        if self.tty {
            args.push("--tty".into());
        }
        if self.stdin {
            args.push("--stdin".into());
        }
        if self.ephemeral {
            args.push("--ephemeral".into());
        }
        if let Some(owner) = self.sandbox_owner {
            args.push(format!("--sandbox-userns={owner}").into());
        }
        if let Some(iface) = &self.dhcp {
            args.push(format!("--dhcp={iface}").into());
        }
        for p in &self.hold {
            args.push(format!("--hold={}", p.to_arg()).into());
        }
        if let Some(h) = &self.health {
            // JSON of plain strings and numbers: it cannot fail to serialize.
            args.push(format!("--health={}", serde_json::to_string(h).unwrap_or_default()).into());
        }
        if self.log != LogLimits::default() {
            // Numbers only: it cannot fail to serialize.
            args.push(
                format!(
                    "--log={}",
                    serde_json::to_string(&self.log).unwrap_or_default()
                )
                .into(),
            );
        }
        if let Some(upstream) = &self.dns {
            // Addresses only: it cannot fail to serialize.
            args.push(
                format!(
                    "--dns={}",
                    serde_json::to_string(upstream).unwrap_or_default()
                )
                .into(),
            );
        }
        args.push(self.runtime.clone().into());
        args.push(self.runtime_root.clone().into());
        args.push(self.id.clone().into());
        args.push(self.bundle.clone().into());
        args.push(self.state.clone().into());
        args
    }

    /// Reads the arguments [`MonitorConfig::to_args`] wrote.
    pub fn from_args(args: Vec<String>) -> Result<Self, String> {
        let (flags, rest): (Vec<String>, Vec<String>) =
            args.into_iter().partition(|a| a.starts_with("--"));
        let [runtime, runtime_root, id, bundle, state] =
            <[String; 5]>::try_from(rest).map_err(|_| USAGE.to_owned())?;
        let mut config = Self {
            tty: false,
            stdin: false,
            sandbox_owner: None,
            dhcp: None,
            hold: Vec::new(),
            health: None,
            log: LogLimits::default(),
            ephemeral: false,
            dns: None,
            runtime: runtime.into(),
            runtime_root: runtime_root.into(),
            id,
            bundle: bundle.into(),
            state: state.into(),
        };
        for f in flags {
            match f.as_str() {
                "--tty" => config.tty = true,
                "--stdin" => config.stdin = true,
                "--ephemeral" => config.ephemeral = true,
                _ => {
                    if let Some(v) = f.strip_prefix("--sandbox-userns=") {
                        config.sandbox_owner = Some(v.parse().map_err(|_| {
                            format!("{f}: expected --sandbox-userns=ID (a host user id)")
                        })?);
                    } else if let Some(iface) = f.strip_prefix("--dhcp=").filter(|i| !i.is_empty())
                    {
                        config.dhcp = Some(iface.to_owned());
                    } else if let Some(h) = f.strip_prefix("--health=") {
                        config.health = Some(
                            serde_json::from_str(h)
                                .map_err(|e| format!("--health: not a healthcheck: {e}"))?,
                        );
                    } else if let Some(d) = f.strip_prefix("--dns=") {
                        config.dns =
                            Some(serde_json::from_str(d).map_err(|e| {
                                format!("--dns: not a list of upstream servers: {e}")
                            })?);
                    } else if let Some(l) = f.strip_prefix("--log=") {
                        config.log = serde_json::from_str(l)
                            .map_err(|e| format!("--log: not log limits: {e}"))?;
                    } else if let Some(p) = f.strip_prefix("--hold=") {
                        config.hold.push(HeldPort::parse(p).ok_or_else(|| {
                            format!("{f}: expected --hold=PROTO:IP:PORT (tcp or udp)")
                        })?);
                    } else {
                        return Err(format!("unknown flag {f}; {USAGE}"));
                    }
                }
            }
        }
        Ok(config)
    }

    /// The files the monitor keeps for this container.
    pub fn files(&self) -> MonitorFiles {
        MonitorFiles::new(&self.state)
    }
}

/// The one line the monitor writes on its standard output once the container runs or could
/// not start; `docker start` returns only then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartReport {
    /// The container runs; its pid and the monitor's are recorded.
    Started,
    /// The runtime failed; its own message.
    Failed(String),
}

impl StartReport {
    /// The line as written (without its newline).
    pub fn to_line(&self) -> String {
        match self {
            Self::Started => "started".to_owned(),
            Self::Failed(message) => format!("error {}", message.replace('\n', " ")),
        }
    }

    /// Reads a line [`StartReport::to_line`] wrote; `None` for anything else (a monitor that
    /// ended without answering leaves an empty line).
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.trim_end();
        match line.split_once(' ').unwrap_or((line, "")) {
            ("started", "") => Some(Self::Started),
            ("error", message) => Some(Self::Failed(message.to_owned())),
            _ => None,
        }
    }
}

/// A frame for a monitor's control socket: `[kind: u8][length: u32 big-endian][payload]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control<'a> {
    /// Bytes for the container's standard input or terminal (kind 0).
    Input(&'a [u8]),
    /// The end of input (kind 1): a pipe is closed, a terminal gets an end-of-file character.
    CloseInput,
    /// The terminal's size (kind 2; payload rows and columns, two big-endian u16).
    Resize { rows: u16, cols: u16 },
}

/// The largest payload a monitor reads in one frame; a larger one is cut to this (the rest is
/// read and dropped), so a client cannot grow a monitor's memory.
pub const MAX_PAYLOAD: usize = 1 << 20;

impl Control<'_> {
    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, size);
        let payload: &[u8] = match self {
            Self::Input(bytes) => {
                kind = 0u8;
                bytes
            }
            Self::CloseInput => {
                kind = 1;
                &[]
            }
            Self::Resize { rows, cols } => {
                kind = 2;
                let [r0, r1] = rows.to_be_bytes();
                let [c0, c1] = cols.to_be_bytes();
                size = [r0, r1, c0, c1];
                &size
            }
        };
        let mut frame = Vec::with_capacity(5 + payload.len());
        frame.push(kind);
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    /// Writes the frame to `to`.
    pub fn send(&self, to: &mut impl Write) -> std::io::Result<()> {
        to.write_all(&self.encode())
    }

    /// Reads the next frame from `from` into `buf` (reused between calls). `Ok(None)` at the
    /// end of the stream or at an incomplete frame; frames of unknown kinds or malformed sizes
    /// are skipped, so a newer endpoint's frame never stops an older monitor.
    pub fn read<'b>(
        from: &mut impl Read,
        buf: &'b mut Vec<u8>,
    ) -> std::io::Result<Option<Control<'b>>> {
        loop {
            let mut header = [0u8; 5];
            if let Err(e) = from.read_exact(&mut header) {
                return end_or(e);
            }
            let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            buf.clear();
            buf.resize(len.min(MAX_PAYLOAD), 0);
            if let Err(e) = from.read_exact(buf) {
                return end_or(e);
            }
            if len > MAX_PAYLOAD {
                let skipped = std::io::copy(
                    &mut from.take((len - MAX_PAYLOAD) as u64),
                    &mut std::io::sink(),
                )?;
                if skipped < (len - MAX_PAYLOAD) as u64 {
                    return Ok(None);
                }
            }
            match (header[0], buf.len()) {
                (0, _) => return Ok(Some(Control::Input(buf))),
                (1, _) => return Ok(Some(Control::CloseInput)),
                (2, 4) => {
                    return Ok(Some(Control::Resize {
                        rows: u16::from_be_bytes([buf[0], buf[1]]),
                        cols: u16::from_be_bytes([buf[2], buf[3]]),
                    }));
                }
                _ => continue,
            }
        }
    }
}

fn end_or<T>(e: std::io::Error) -> std::io::Result<Option<T>> {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Ok(None),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_arguments() {
        let mut c = MonitorConfig {
            tty: true,
            stdin: false,
            sandbox_owner: Some(231_072),
            dhcp: None,
            hold: Vec::new(),
            health: None,
            log: LogLimits {
                max_size: Some(10_000_000),
                max_file: 3,
            },
            ephemeral: true,
            dns: None,
            runtime: "/usr/bin/runsc".into(),
            runtime_root: "/var/lib/vic/v/runtime".into(),
            id: "abc".into(),
            bundle: "/var/lib/vic/v/containers/abc/bundle".into(),
            state: "/var/lib/vic/v/containers/abc".into(),
        };
        let args = |c: &MonitorConfig| {
            c.to_args()
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(MonitorConfig::from_args(args(&c)).unwrap(), c);
        c.tty = false;
        c.stdin = true;
        c.sandbox_owner = None;
        assert_eq!(MonitorConfig::from_args(args(&c)).unwrap(), c);
        c.dhcp = Some("eth0".into());
        assert!(args(&c).contains(&"--dhcp=eth0".to_owned()));
        assert_eq!(MonitorConfig::from_args(args(&c)).unwrap(), c);
        c.hold = vec![
            HeldPort {
                udp: false,
                addr: "0.0.0.0:8080".parse().unwrap(),
            },
            HeldPort {
                udp: true,
                addr: "127.0.0.1:53".parse().unwrap(),
            },
        ];
        assert!(args(&c).contains(&"--hold=udp:127.0.0.1:53".to_owned()));
        assert_eq!(MonitorConfig::from_args(args(&c)).unwrap(), c);
        c.dns = Some(vec![
            "192.0.2.53".parse().unwrap(),
            "2001:db8::53".parse().unwrap(),
        ]);
        assert!(args(&c).contains(&r#"--dns=["192.0.2.53","2001:db8::53"]"#.to_owned()));
        assert_eq!(MonitorConfig::from_args(args(&c)).unwrap(), c);
        c.dns = Some(Vec::new());
        assert_eq!(MonitorConfig::from_args(args(&c)).unwrap(), c);
        c.health = Some(HealthProbe {
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "test -f /ok && echo 'yes'".into(),
            ],
            user: "1000:1000".into(),
            cwd: "/srv".into(),
            env: vec!["A=b c".into()],
            interval_ms: 1000,
            timeout_ms: 500,
            start_period_ms: 0,
            retries: 3,
        });
        assert_eq!(MonitorConfig::from_args(args(&c)).unwrap(), c);
        let with = |flag: &str| {
            let mut a = args(&c);
            a.insert(0, flag.to_owned());
            MonitorConfig::from_args(a).unwrap_err()
        };
        assert!(with("--bogus").contains("unknown flag --bogus"));
        assert!(with("--hold=sctp:0.0.0.0:1").contains("PROTO:IP:PORT"));
        // The form of an older endpoint, which named the namespace itself.
        assert!(with("--sandbox-userns=/proc/1/ns/user:5").contains("host user id"));
        assert!(
            MonitorConfig::from_args(vec!["a".into()])
                .unwrap_err()
                .starts_with("usage")
        );
    }

    #[test]
    fn start_reports() {
        for r in [
            StartReport::Started,
            StartReport::Failed("OCI runtime create failed: no such file".into()),
        ] {
            assert_eq!(StartReport::parse(&format!("{}\n", r.to_line())), Some(r));
        }
        assert_eq!(
            StartReport::Failed("two\nlines".into()).to_line(),
            "error two lines"
        );
        assert_eq!(StartReport::parse(""), None);
        assert_eq!(StartReport::parse("started early"), None);
    }

    #[test]
    fn frames_round_trip_and_unknown_ones_are_skipped() {
        let mut wire = Vec::new();
        Control::Input(b"hello").send(&mut wire).unwrap();
        wire.extend_from_slice(&[9, 0, 0, 0, 2, 1, 2]); // a kind this side does not know
        Control::Resize { rows: 24, cols: 80 }
            .send(&mut wire)
            .unwrap();
        wire.extend_from_slice(&[2, 0, 0, 0, 1, 7]); // a resize of the wrong size
        Control::CloseInput.send(&mut wire).unwrap();
        wire.extend_from_slice(&[0, 0, 0, 0, 9, 1]); // cut short
        let mut r = wire.as_slice();
        let mut buf = Vec::new();
        assert_eq!(
            Control::read(&mut r, &mut buf).unwrap(),
            Some(Control::Input(b"hello"))
        );
        assert_eq!(
            Control::read(&mut r, &mut buf).unwrap(),
            Some(Control::Resize { rows: 24, cols: 80 })
        );
        assert_eq!(
            Control::read(&mut r, &mut buf).unwrap(),
            Some(Control::CloseInput)
        );
        assert_eq!(Control::read(&mut r, &mut buf).unwrap(), None);
    }

    #[test]
    fn oversized_frames_are_cut_not_buffered() {
        let big = vec![7u8; MAX_PAYLOAD + 10];
        let mut wire = Control::Input(&big).encode();
        Control::CloseInput.send(&mut wire).unwrap();
        let mut r = wire.as_slice();
        let mut buf = Vec::new();
        match Control::read(&mut r, &mut buf).unwrap() {
            Some(Control::Input(b)) => assert_eq!(b.len(), MAX_PAYLOAD),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Control::read(&mut r, &mut buf).unwrap(),
            Some(Control::CloseInput)
        );
    }

    #[test]
    fn exit_records_and_pids() {
        let dir = tempfile::tempdir().unwrap();
        let files = MonitorFiles::new(dir.path());
        assert_eq!(files.read_exit(), None);
        let exit = ExitRecord {
            code: 137,
            finished: "2026-12-05T20:00:00Z".into(),
        };
        files.write_exit(&exit, true).unwrap();
        assert_eq!(files.read_exit(), Some(exit.clone()));
        files.write_exit(&exit, false).unwrap();
        assert_eq!(files.read_exit(), Some(exit));
        // The format an older monitor wrote by hand.
        std::fs::write(files.exit(), r#"{"code":3,"finished":"x"}"#).unwrap();
        assert_eq!(files.read_exit().unwrap().code, 3);
        std::fs::write(files.exit(), "{\"co").unwrap();
        assert_eq!(files.read_exit().unwrap().code, -1);
        files.write_monitor_pid().unwrap();
        assert_eq!(files.read_monitor_pid(), Some(std::process::id() as i32));
        std::fs::write(files.init_pid(), "42").unwrap();
        assert_eq!(files.read_init_pid(), Some(42));
        files.clear_run();
        assert_eq!(
            (
                files.read_exit(),
                files.read_monitor_pid(),
                files.read_init_pid()
            ),
            (None, None, None)
        );
    }
}
