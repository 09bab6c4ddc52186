//! tests/sudo.rs: the machine set-up every test needs (users, sudoers
//! drop-in, lock), running gopeek through sudo, the policy file and the
//! audit log read back. Everything changed is restored on drop.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The user who runs `sudo gopeek`.
pub const USER: &str = "gopeektest";
/// The owner of the target the default policy allows.
pub const TARGET_USER: &str = "gopeektgt";
pub const SUDOERS: &str = "/etc/sudoers.d/gopeek-tests";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gopeek")
}

/// What every test needs; dropping it removes the sudoers drop-in and
/// releases the lock.
pub struct Env {
    pub uid: u32,
    pub gid: u32,
    pub target_uid: u32,
    pub target_gid: u32,
    /// The system log, read back (`None` once a test removed it).
    pub audit: Option<AuditSink>,
    /// No policy file unless a test installs one.
    _policy: PolicyGuard,
    _lock: File,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(SUDOERS);
    }
}

pub fn id_of(name: &str, flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, name]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Creates the system user `name` (with its own group) unless it exists.
pub fn ensure_user(name: &str) -> (u32, u32) {
    if id_of(name, "-u").is_none() {
        let st = Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .status()
            .expect("running useradd");
        assert!(st.success(), "useradd {name} failed");
    }
    (id_of(name, "-u").unwrap(), id_of(name, "-g").unwrap())
}

/// `None` (and a note) when not root; panics when root but sudo is missing.
pub fn setup() -> Option<Env> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: skipping, the sudo tests need root");
        return None;
    }
    assert!(
        Path::new("/usr/bin/sudo").exists(),
        "sudo is not installed: run scripts/setup"
    );
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/gopeek-sudo-tests.lock")
        .unwrap();
    // SAFETY: flock on an open fd.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let (uid, gid) = ensure_user(USER);
    let (target_uid, target_gid) = ensure_user(TARGET_USER);
    std::fs::write(SUDOERS, format!("{USER} ALL=(root) NOPASSWD: {}\n", bin())).unwrap();
    std::fs::set_permissions(SUDOERS, std::fs::Permissions::from_mode(0o440)).unwrap();
    Some(Env {
        uid,
        gid,
        target_uid,
        target_gid,
        audit: Some(AuditSink::open()),
        _policy: PolicyGuard::set(None, 0),
        _lock: lock,
    })
}

/// `sudo -n gopeek ARGS` as [`USER`].
pub fn sudo_gopeek(args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", USER, "--", "sudo", "-n", bin()]).args(args);
    c.stdin(Stdio::null());
    c
}

pub fn run(args: &[&str]) -> Output {
    sudo_gopeek(args).output().expect("running sudo gopeek")
}

/// A directory everyone may create files in (sticky, like /tmp).
pub fn shared_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The pid of the running gopeek whose command line mentions `needle`
/// (sudo's own command line mentions it too, so match the executable)
/// and that satisfies `also` (under sudo the reader and its root monitor
/// share a command line).
pub fn find_gopeek_as(needle: &str, also: impl Fn(i32) -> bool) -> Option<i32> {
    let me = std::fs::canonicalize(bin()).ok()?;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_ref() != Some(&me) {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) && also(pid) {
            return Some(pid);
        }
    }
    None
}

pub const POLICY_DIR: &str = "/etc/gopeek";
pub const POLICY: &str = "/etc/gopeek/policy.toml";

/// Installs `/etc/gopeek/policy.toml` (or removes it with `None`) for the
/// test and restores what was there on drop.
pub struct PolicyGuard {
    dir_existed: bool,
    dir_mode: Option<u32>,
    old: Option<(Vec<u8>, u32)>,
}

impl PolicyGuard {
    pub fn set(text: Option<&str>, mode: u32) -> PolicyGuard {
        let dir_meta = std::fs::metadata(POLICY_DIR).ok();
        let old = std::fs::read(POLICY)
            .ok()
            .map(|b| (b, std::fs::metadata(POLICY).unwrap().mode() & 0o7777));
        let g = PolicyGuard {
            dir_existed: dir_meta.is_some(),
            dir_mode: dir_meta.map(|m| m.mode() & 0o7777),
            old,
        };
        let _ = std::fs::remove_file(POLICY);
        if let Some(text) = text {
            std::fs::create_dir_all(POLICY_DIR).unwrap();
            std::fs::set_permissions(POLICY_DIR, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::write(POLICY, text).unwrap();
            std::fs::set_permissions(POLICY, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        g
    }
}

impl Drop for PolicyGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(POLICY);
        if let Some((bytes, mode)) = &self.old {
            let _ = std::fs::write(POLICY, bytes);
            let _ = std::fs::set_permissions(POLICY, std::fs::Permissions::from_mode(*mode));
            let _ = std::os::unix::fs::chown(POLICY, Some(0), Some(0));
        }
        if let Some(m) = self.dir_mode {
            let _ = std::fs::set_permissions(POLICY_DIR, std::fs::Permissions::from_mode(m));
            let _ = std::os::unix::fs::chown(POLICY_DIR, Some(0), Some(0));
        }
        if !self.dir_existed {
            let _ = std::fs::remove_dir(POLICY_DIR);
        }
    }
}

/// Where audit lines can be read back: the test's own listener on
/// `/dev/log` when no syslog daemon is there (fresh CI machines), else the
/// journal.
pub enum AuditSink {
    Own {
        lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        ino: u64,
    },
    Journal {
        since: String,
    },
}

impl AuditSink {
    pub fn open() -> AuditSink {
        use std::os::unix::net::UnixDatagram;
        let dev_log = Path::new("/dev/log");
        if dev_log.exists() {
            let probe = UnixDatagram::unbound().unwrap();
            match probe.connect(dev_log) {
                Ok(()) => {
                    assert!(
                        Command::new("journalctl")
                            .arg("--version")
                            .output()
                            .is_ok_and(|o| o.status.success()),
                        "a syslog daemon owns /dev/log and there is no journalctl to read it back"
                    );
                    let since = String::from_utf8(
                        Command::new("date")
                            .arg("+%Y-%m-%d %H:%M:%S")
                            .output()
                            .unwrap()
                            .stdout,
                    )
                    .unwrap()
                    .trim()
                    .to_string();
                    return AuditSink::Journal { since };
                }
                // A stale socket left by a killed test run: nobody listens.
                Err(_) => std::fs::remove_file(dev_log).unwrap(),
            }
        }
        let sock = UnixDatagram::bind(dev_log).unwrap();
        std::fs::set_permissions(dev_log, std::fs::Permissions::from_mode(0o666)).unwrap();
        let ino = std::fs::metadata(dev_log).unwrap().ino();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, s) = (lines.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 8192];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    l.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        });
        AuditSink::Own { lines, stop, ino }
    }

    /// gopeek's lines received so far (waits briefly for stragglers).
    pub fn gopeek_lines(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        match self {
            AuditSink::Own { lines, .. } => lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(" gopeek["))
                .cloned()
                .collect(),
            AuditSink::Journal { since } => {
                let out = Command::new("journalctl")
                    .args(["-t", "gopeek", "--since", since, "-o", "short"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.contains("gopeek["))
                    .map(|l| l.to_string())
                    .collect()
            }
        }
    }

    /// The one line about `pid` whose outcome starts with `outcome`.
    pub fn expect(&self, pid: i32, outcome: &str) -> String {
        let lines = self.gopeek_lines();
        let needle_pid = format!(" pid={pid} ");
        let needle_out = format!("outcome=\"{outcome}");
        lines
            .iter()
            .find(|l| l.contains(&needle_pid) && l.contains(&needle_out))
            .cloned()
            .unwrap_or_else(|| {
                panic!("no audit line for pid {pid} with outcome {outcome:?} in {lines:#?}")
            })
    }
}

impl Drop for AuditSink {
    fn drop(&mut self) {
        if let AuditSink::Own { stop, ino, .. } = self {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            if std::fs::metadata("/dev/log").is_ok_and(|m| m.ino() == *ino) {
                let _ = std::fs::remove_file("/dev/log");
            }
        }
    }
}
