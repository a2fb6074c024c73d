//! VCHs on other hosts: `--target ssh://[user@]host[:port]` (`flow.rs`), the SSH connection
//! with its verified host key and the target's own vic-machine (`ssh.rs`), and the certificate
//! work done on this machine for `create`, `configure` and `cert issue` (`create.rs`,
//! `configure.rs`, `issue.rs`), with a record of which certificate folder is whose
//! (`record.rs`).

mod configure;
mod create;
mod flow;
mod issue;
mod record;
pub(crate) mod ssh;

pub(crate) use flow::{RemoteArgs, run};
