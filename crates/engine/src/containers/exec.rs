//! `docker exec`: instances created, then started once with the runtime, with pipes or a
//! terminal.

use super::*;
use crate::error::ExecError;

/// An exec instance (`docker exec`): created, then started once.
#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: u32,
    /// `docker exec -t`: the process gets a terminal.
    pub tty: bool,
    /// `docker exec -i`: the process reads what the client sends.
    pub open_stdin: bool,
    /// `--detach-keys` of the exec (checked by the API when it was created); none: Docker's
    /// default.
    pub detach_keys: Option<String>,
}

/// What `docker exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub detach_keys: Option<String>,
}

impl ContainerService {
    /// `docker exec` (create): records what to run in a running container.
    pub fn exec_create(&self, name_or_id: &str, req: ExecRequest) -> Result<String, EngineError> {
        let ExecRequest {
            cmd,
            env,
            user,
            working_dir,
            tty,
            open_stdin,
            detach_keys,
        } = req;
        let id = self.resolve(name_or_id)?;
        let rec = self.load(&id)?;
        match self.status(&rec) {
            Status::Running { .. } => {}
            Status::Paused { .. } => {
                return Err(EngineError::Conflict(format!(
                    "Container {id} is paused, unpause the container before exec"
                )));
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "Container {id} is not running"
                )));
            }
        }
        if cmd.is_empty() {
            return Err(ExecError::NoCommand.into());
        }
        let exec_id = vic_pki::random_hex(32);
        let mut all_env = rec.env.clone();
        all_env.extend(env);
        let record = ExecRecord {
            id: exec_id.clone(),
            container: id,
            cmd,
            env: all_env,
            user: user.filter(|u| !u.is_empty()).unwrap_or(rec.user.clone()),
            working_dir: working_dir
                .filter(|w| !w.is_empty())
                .unwrap_or(rec.working_dir.clone()),
            running: false,
            exit_code: None,
            pid: 0,
            tty,
            open_stdin,
            detach_keys: detach_keys.filter(|k| !k.is_empty()),
        };
        let action = format!("exec_create: {}", record.cmd.join(" "));
        self.execs
            .lock()
            .map_err(|_| internal("exec table", "poisoned"))?
            .insert(exec_id.clone(), record);
        self.emit(&action, &rec, &[("execID", exec_id.clone())]);
        Ok(exec_id)
    }

    /// An exec instance.
    pub fn exec_inspect(&self, exec_id: &str) -> Result<ExecRecord, EngineError> {
        self.execs
            .lock()
            .map_err(|_| internal("exec table", "poisoned"))?
            .get(exec_id)
            .cloned()
            .ok_or_else(|| EngineError::NoSuchExec(exec_id.to_owned()))
    }

    /// Starts an exec instance with `runc exec`; its client moves its input and output and
    /// waits for its end with [`ExecSession::finish`]. Blocking: a terminal is received from
    /// the runtime before this returns. A process that cannot start (`OCI runtime exec
    /// failed`) has exited 126, as Docker reports it.
    pub fn exec_start(self: &Arc<Self>, exec_id: &str) -> Result<ExecSession, EngineError> {
        let started = self.launch_exec(exec_id);
        if let Err(EngineError::Exec(_)) = &started {
            self.exec_finished(exec_id, 126);
        }
        started
    }

    fn launch_exec(self: &Arc<Self>, exec_id: &str) -> Result<ExecSession, EngineError> {
        let rec = self.exec_inspect(exec_id)?;
        if rec.running || rec.exit_code.is_some() {
            return Err(EngineError::Conflict(format!(
                "exec {exec_id} has already run"
            )));
        }
        // The user database of the running container's own root.
        let (uid, gid) = self
            .user_ids(&rec.user, &self.dir(&rec.container).join("rootfs"))
            .map_err(|e| match e {
                EngineError::ContainerConfig(e) => EngineError::Exec(ExecError::User(e)),
                e => e,
            })?;
        // With a terminal, crun reports a process that cannot start only in its log (its
        // standard error is the terminal by then): the exec gets a log of its own.
        let log = self
            .dir(&rec.container)
            .join(format!("exec-{}.log", &exec_id[..12]));
        let runtime = if rec.tty {
            self.runtime_file(&log)?;
            self.runc.clone().logging_to(&log)
        } else {
            self.runc.clone()
        };
        let mut cmd = tokio::process::Command::from(runtime.command_for(&rec.container));
        cmd.arg("exec");
        cmd.args(["--user", &format!("{uid}:{gid}"), "--cwd", &rec.working_dir]);
        for e in &rec.env {
            cmd.args(["--env", e]);
        }
        if rec.tty {
            let started = self.exec_start_terminal(exec_id, &rec, cmd, &log);
            let _ = std::fs::remove_file(&log);
            return started;
        }
        let pid_file = self
            .dir(&rec.container)
            .join(format!("exec-{}.pid", &exec_id[..12]));
        self.runtime_file(&pid_file)?;
        cmd.stdin(if rec.open_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&rec.container)
        .args(&rec.cmd)
        .kill_on_drop(false);
        let child = cmd
            .spawn()
            .map_err(|e| internal("cannot run the exec", e))?;
        self.exec_running(exec_id, child.id().unwrap_or(0), None);
        Ok(ExecSession::with_pipes(
            self.clone(),
            exec_id,
            child,
            pid_file,
        ))
    }

    /// `runc exec --tty` (which must detach): receives the terminal, reads the pid.
    fn exec_start_terminal(
        self: &Arc<Self>,
        exec_id: &str,
        rec: &ExecRecord,
        mut cmd: tokio::process::Command,
        log: &std::path::Path,
    ) -> Result<ExecSession, EngineError> {
        let dir = self.dir(&rec.container);
        let name = &exec_id[..12];
        let socket = format!("exec-{name}.sock");
        let console = match self.sandbox_owner() {
            Some(owner) => vic_runtime::ConsoleSocket::bind_for(&dir, &socket, owner),
            None => vic_runtime::ConsoleSocket::bind(&dir, &socket),
        }
        .map_err(|e| internal("cannot listen for the exec's terminal", e))?;
        let pid_file = dir.join(format!("exec-{name}.pid"));
        self.runtime_file(&pid_file)?;
        cmd.args(["--tty", "--detach", "--console-socket"])
            .arg(console.path())
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&rec.container)
            .args(&rec.cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (tx, rx) = std::sync::mpsc::channel();
        let out = tokio::runtime::Handle::current().block_on(async move {
            // Called on a blocking thread of the runtime.
            let child = cmd.spawn()?;
            std::thread::spawn(move || {
                let _ = tx.send(console.receive_master());
            });
            child.wait_with_output().await
        });
        let out = out.map_err(|e| internal("cannot run the exec", e))?;
        if !out.status.success() {
            // Wake the receiving thread so it ends.
            let _ = vic_runtime::ShortPath::new(&dir, &format!("exec-{name}.sock"))
                .and_then(|p| p.connect());
            let mut why = vic_runtime::runtime_message(&out.stderr);
            if why.is_empty() {
                why = vic_runtime::last_logged_error(log).unwrap_or_default();
            }
            return Err(ExecError::Launch(why).into());
        }
        let master = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|e| internal("the runtime sent no terminal", e))?
            .map_err(|e| internal("exec terminal", e))?;
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .ok_or_else(|| internal("exec", "the runtime recorded no pid"))?;
        let _ = std::fs::remove_file(&pid_file);
        self.exec_running(exec_id, pid as u32, master.try_clone().ok());
        Ok(ExecSession::with_terminal(
            self.clone(),
            exec_id,
            pid,
            master,
            rec.open_stdin,
        ))
    }

    fn exec_running(&self, exec_id: &str, pid: u32, terminal: Option<std::fs::File>) {
        if let Ok(mut t) = self.execs.lock()
            && let Some(r) = t.get_mut(exec_id)
        {
            r.running = true;
            r.pid = pid;
        }
        if let Some(master) = terminal
            && let Ok(mut t) = self.terminals.lock()
        {
            t.insert(exec_id.to_owned(), master);
        }
    }

    /// `POST /exec/{id}/resize`: the exec's terminal size.
    pub fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        self.exec_inspect(exec_id)?;
        let t = self
            .terminals
            .lock()
            .map_err(|_| internal("exec table", "poisoned"))?;
        match t.get(exec_id) {
            Some(master) => {
                vic_runtime::resize(master, rows, cols).map_err(|e| internal("resize", e))
            }
            None => Ok(()),
        }
    }

    /// Records an exec's exit code.
    pub(super) fn exec_finished(&self, exec_id: &str, code: i32) {
        if let Ok(mut t) = self.execs.lock()
            && let Some(r) = t.get_mut(exec_id)
        {
            r.running = false;
            r.exit_code = Some(code);
        }
        if let Ok(mut t) = self.terminals.lock() {
            t.remove(exec_id);
        }
    }
}
