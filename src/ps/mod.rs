//! `gopeek ps`: the Go processes on this machine, one record each, found
//! with no agent in the target (unlike `gops`): every `/proc/PID/exe` that
//! carries Go build info is a Go program. Nothing is stopped; the goroutine
//! count is read while the process runs (see [`count_goroutines`]).
//!
//! Processes in containers are listed with the pid they have inside their
//! own namespace and the container id their cgroup names, since the
//! engineer on the node has to match them with what the container shows.

mod users;

use crate::binary::buildinfo::BuildInfo;
use crate::binary::elf::GoBinary;
use crate::process::{namespace, proc_fs};
use crate::snapshot::count_goroutines;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What `gopeek ps` reads of each process.
#[derive(Debug, Clone, Copy)]
pub struct PsOptions {
    /// Count each process's goroutines (reads its memory, never stops it).
    pub goroutines: bool,
    /// Also report the processes that were skipped, and why.
    pub all: bool,
}

/// The whole listing (JSON schema `gopeek.ps/1`).
#[derive(Debug, Clone, Serialize)]
pub struct PsReport {
    /// `gopeek.ps/1`.
    pub schema: &'static str,
    /// Every Go process gopeek could read, by pid.
    pub processes: Vec<PsEntry>,
    /// Under `--all`: every other process and why it is not listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Vec<Skipped>>,
}

/// One Go process.
#[derive(Debug, Clone, Serialize)]
pub struct PsEntry {
    /// The pid as gopeek (the host, or the namespace gopeek runs in) sees it.
    pub pid: i32,
    /// The pid inside the process's own (innermost) pid namespace: what the
    /// process itself and a `ps` in its container show.
    pub nspid: i32,
    /// The user it runs as (effective uid), by name where
    /// gopeek's `/etc/passwd` knows it, else the number.
    pub user: String,
    /// Its effective uid.
    pub uid: u32,
    /// The Go release it was built with (`go1.27.4`).
    pub go_version: String,
    /// The main module's path, when built in module mode.
    pub module: Option<String>,
    /// The main module's version (`v1.4.2`, `(devel)`).
    pub module_version: Option<String>,
    /// The executable, as `/proc/PID/exe` names it (a path in the
    /// process's own mount namespace).
    pub exe: String,
    /// The command line, arguments joined by spaces.
    pub cmdline: String,
    /// Resident memory.
    pub rss_bytes: u64,
    /// `runtime.NumGoroutine()` as read from outside; `None` under
    /// `--no-goroutines` or when the count could not be read.
    pub goroutines: Option<u64>,
    /// Why the goroutines could not be counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goroutines_error: Option<String>,
    /// The container id (64 hex digits) its cgroup names, if any.
    pub container: Option<String>,
}

/// A process `gopeek ps` does not list.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The pid.
    pub pid: i32,
    /// Its command name, when readable.
    pub comm: Option<String>,
    /// Why it is not listed (`not a Go program`, `kernel thread`,
    /// `permission denied`...).
    pub reason: String,
}

/// Upper bound on the command line read per process.
const MAX_CMDLINE: u64 = 64 * 1024;
/// Upper bound on the processes listed (pid_max is at most 2^22).
const MAX_PROCESSES: usize = 1 << 22;

/// Lists the Go processes visible in `/proc`, gopeek itself excluded.
pub fn list(opts: PsOptions) -> PsReport {
    let me = std::process::id() as i32;
    let users = users::Users::load();
    let mut processes = Vec::new();
    let mut skipped = Vec::new();
    // The same executable (by device and inode) is parsed once.
    let mut seen: HashMap<(u64, u64), Result<BuildInfo, String>> = HashMap::new();
    for pid in pids().into_iter().filter(|&p| p != me) {
        match entry(pid, opts, &users, &mut seen) {
            Ok(Some(e)) => processes.push(e),
            // Gone between listing and reading: not worth a line.
            Ok(None) => {}
            Err(reason) => skipped.push(Skipped {
                pid,
                comm: proc_fs::comm(pid).ok(),
                reason,
            }),
        }
    }
    PsReport {
        schema: "gopeek.ps/1",
        processes,
        skipped: opts.all.then_some(skipped),
    }
}

/// Every numeric entry of `/proc`, sorted.
fn pids() -> Vec<i32> {
    let mut v: Vec<i32> = match std::fs::read_dir("/proc") {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .take(MAX_PROCESSES)
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort_unstable();
    v
}

/// One process's record: `Ok(None)` if it vanished, `Err(why)` if it is
/// not listed.
fn entry(
    pid: i32,
    opts: PsOptions,
    users: &users::Users,
    seen: &mut HashMap<(u64, u64), Result<BuildInfo, String>>,
) -> Result<Option<PsEntry>, String> {
    let path = proc_fs::exe_open_path(pid);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match proc_fs::process_state(pid) {
                Err(_) => Ok(None),
                Ok('Z') => Err("zombie".into()),
                Ok(_) if proc_fs::is_kernel_thread(pid) => Err("kernel thread".into()),
                Ok(_) => Ok(None),
            };
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(
                "permission denied reading /proc/PID/exe (run as root or as its user)".into(),
            )
        }
        Err(e) => return Err(format!("cannot open /proc/{pid}/exe: {e}")),
    };
    let key = file
        .metadata()
        .map(|m| (m.dev(), m.ino()))
        .map_err(|e| format!("cannot stat /proc/{pid}/exe: {e}"))?;
    let info = seen
        .entry(key)
        .or_insert_with(|| build_info(&path, &file))
        .clone()?;
    let status = match proc_fs::ProcStatus::read(pid) {
        Ok(s) => s,
        Err(e) if proc_fs::is_gone(&e) => return Ok(None),
        Err(e) => return Err(format!("cannot read /proc/{pid}/status: {e}")),
    };
    let uid = status.uid[1];
    let (goroutines, goroutines_error) = if opts.goroutines {
        match count_goroutines(pid) {
            Ok(n) => (Some(n.user), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    let main = info.main.as_ref();
    Ok(Some(PsEntry {
        pid,
        nspid: namespace::inner_pid(pid).unwrap_or(pid),
        user: users.name(uid),
        uid,
        go_version: info.go_version.clone(),
        module: main.map(|m| m.path.clone()),
        module_version: main.map(|m| m.version.clone()),
        exe: proc_fs::exe_path(pid)
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        cmdline: cmdline(pid),
        rss_bytes: rss_bytes(pid),
        goroutines,
        goroutines_error,
        container: namespace::container_id(pid),
    }))
}

/// The build info of an executable, or why it has none.
fn build_info(path: &Path, file: &File) -> Result<BuildInfo, String> {
    let bin =
        GoBinary::from_file(path, file).map_err(|_| "not a Go program (not ELF)".to_string())?;
    BuildInfo::from_binary(&bin).map_err(|_| "not a Go program (no Go build info)".to_string())
}

/// `/proc/PID/cmdline`, arguments joined by spaces (bounded, lossy).
fn cmdline(pid: i32) -> String {
    let mut raw = Vec::new();
    if let Ok(f) = File::open(format!("/proc/{pid}/cmdline")) {
        let _ = f.take(MAX_CMDLINE).read_to_end(&mut raw);
    }
    join_cmdline(&raw)
}

/// NUL-separated arguments as one line.
fn join_cmdline(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    String::from_utf8_lossy(raw).replace('\0', " ")
}

/// Resident set size: the second field of `/proc/PID/statm`, in pages.
fn rss_bytes(pid: i32) -> u64 {
    let pages = proc_fs::read_small(&format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages.saturating_mul(u64::try_from(page).unwrap_or(4096))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_joins_arguments() {
        assert_eq!(join_cmdline(b"/bin/app\0-v\0--x=1\0"), "/bin/app -v --x=1");
        assert_eq!(join_cmdline(b""), "");
        assert_eq!(join_cmdline(b"a\xff\0b"), "a\u{fffd} b");
    }

    #[test]
    fn lists_no_non_go_process_and_not_itself() {
        // The test binary is Rust: it must be skipped (it is gopeek's own
        // process here, which is excluded outright), and pid 1 of this
        // machine is not Go either.
        let r = list(PsOptions {
            goroutines: false,
            all: true,
        });
        let me = std::process::id() as i32;
        assert!(r.processes.iter().all(|p| p.pid != me));
        assert!(r.processes.iter().all(|p| !p.go_version.is_empty()));
        let skipped = r.skipped.unwrap();
        assert!(skipped.iter().all(|s| s.pid != me));
        assert!(rss_bytes(me) > 0);
    }
}
