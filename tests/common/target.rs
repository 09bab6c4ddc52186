//! The one way tests start a target process: [`Launch`] (or its shorthands
//! [`start`] and [`start_env`]).
//!
//! A target runs in a fresh temporary directory (its files, e.g. the
//! `parked` fixture's `-out oracle.txt`, land there), with stdin from
//! /dev/null, stderr in `stderr.txt` of that directory, and stdout read
//! line by line for its whole life (so that it never blocks on a full pipe;
//! [`Launch::on_line`] sees every line). [`Launch::start`] returns once the
//! target printed `ready <pid>` (every fixture and test target does, once
//! it is set up); [`Launch::spawn`] does not wait. The target is killed and
//! reaped when the [`Running`] is dropped, panics included.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long [`Launch::start`] waits for `ready <pid>` by default.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running target, killed and reaped on drop.
pub struct Running {
    pub child: Child,
    pub pid: i32,
    /// Its working directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.txt")).unwrap_or_default()
    }
}

/// Called with each line of the target's stdout.
type LineFn = Box<dyn FnMut(&str) + Send>;

/// A target to start; see the module documentation.
pub struct Launch {
    bin: PathBuf,
    cmd: Command,
    dir: tempfile::TempDir,
    on_line: Option<LineFn>,
}

impl Launch {
    pub fn new(bin: &Path) -> Launch {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        Launch {
            bin: bin.to_path_buf(),
            cmd,
            dir,
            on_line: None,
        }
    }

    /// Its working directory (for files it should find there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn args(mut self, args: &[&str]) -> Launch {
        self.cmd.args(args);
        self
    }

    pub fn envs(mut self, env: &[(&str, &str)]) -> Launch {
        self.cmd.envs(env.iter().copied());
        self
    }

    /// Runs the target as `uid:gid` (the test runs as root). Its directory
    /// becomes writable by everyone (sticky, like /tmp), so that it can
    /// write its files there.
    pub fn owner(mut self, uid: u32, gid: u32) -> Launch {
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        self.cmd.uid(uid).gid(gid);
        self
    }

    /// Called with every line the target prints on stdout (the `ready`
    /// line included), from a reader thread.
    pub fn on_line(mut self, f: impl FnMut(&str) + Send + 'static) -> Launch {
        self.on_line = Some(Box::new(f));
        self
    }

    /// Killed (SIGKILL) when the test thread that starts it ends, even if
    /// the test process is killed and cannot drop the [`Running`].
    pub fn kill_with_test(mut self) -> Launch {
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            self.cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self
    }

    /// Lets the target leave a core when it crashes (RLIMIT_CORE raised
    /// to unlimited in the child before exec); where the core lands is
    /// the kernel's `core_pattern` (see tests/core_dump.rs).
    pub fn core_dumps(mut self) -> Launch {
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            self.cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: libc::RLIM_INFINITY,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_CORE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self
    }

    /// Starts the target and waits until it prints `ready <pid>` (its own
    /// pid), at most 60 s; panics, with its stderr, if it does not.
    pub fn start(self) -> Running {
        let within = READY_WITHIN;
        let (mut run, ready, bin) = self.launch();
        match ready.recv_timeout(within) {
            Ok(line) => {
                let said = line.split_whitespace().nth(1).and_then(|p| p.parse().ok());
                assert_eq!(
                    said,
                    Some(run.pid),
                    "{} printed {line:?}; its pid is {}",
                    bin.display(),
                    run.pid
                );
                run
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "{} did not print `ready <pid>` within {} s; stderr:\n{}",
                bin.display(),
                within.as_secs(),
                run.stderr()
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let st = run.child.wait();
                panic!(
                    "{} closed its stdout without printing `ready <pid>` ({st:?}); stderr:\n{}",
                    bin.display(),
                    run.stderr()
                )
            }
        }
    }

    /// Starts the target without waiting for it to come up.
    pub fn spawn(self) -> Running {
        self.launch().0
    }

    fn launch(mut self) -> (Running, mpsc::Receiver<String>, PathBuf) {
        let stderr = std::fs::File::create(self.dir.path().join("stderr.txt")).unwrap();
        self.cmd.stderr(stderr);
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        let pid = child.id() as i32;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let mut on_line = self.on_line.take();
        std::thread::spawn(move || {
            let mut ready = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(f) = on_line.as_mut() {
                    f(&line);
                }
                if line.starts_with("ready ") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(line);
                    }
                }
            }
            // End of output: dropping `ready` tells a waiter that no ready
            // line will come.
        });
        let run = Running {
            child,
            pid,
            dir: self.dir,
        };
        (run, rx, self.bin)
    }
}

/// Starts `bin` with `args` and waits for its `ready <pid>` line.
pub fn start(bin: &Path, args: &[&str]) -> Running {
    Launch::new(bin).args(args).start()
}

/// Like [`start`], with extra environment variables.
pub fn start_env(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
    Launch::new(bin).args(args).envs(env).start()
}

/// Asks a fixture that profiles itself on SIGUSR1 (cpuburn) for its
/// `round`-th CPU profile and waits for its "profiled ROUND" line in
/// `lines` (what `Launch::on_line` collected).
pub fn request_go_profile(run: &Running, lines: &std::sync::Mutex<Vec<String>>, round: usize) {
    // SAFETY: kill with a valid signal to the fixture the test started.
    assert_eq!(unsafe { libc::kill(run.pid, libc::SIGUSR1) }, 0);
    let said = format!("profiled {round}");
    assert!(
        super::wait_until(std::time::Duration::from_secs(30), || lines
            .lock()
            .unwrap()
            .contains(&said)),
        "the fixture did not write its profile; stderr:\n{}",
        run.stderr()
    );
}
