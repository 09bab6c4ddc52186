//! Crashing a fixture into a core, and reading Go's crash text.

use crate::common::*;
use std::path::{Path, PathBuf};

/// A fixture that crashed: its core, and what it printed on the way down.
pub struct Crash {
    /// Keeps the working directory (and the core in it) alive.
    pub _run: Running,
    pub core: PathBuf,
    pub stderr: String,
}

/// Where the kernel writes cores: these tests need the plain pattern
/// (`core`, `core.%p`...) that writes into the crashing process's working
/// directory. A pattern that pipes to a program (systemd-coredump,
/// apport) or names another directory cannot be used; the test says so.
pub fn check_core_pattern() {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let pattern = pattern.trim();
    assert!(
        !pattern.starts_with('|') && !pattern.contains('/'),
        "kernel.core_pattern is {pattern:?}: cores go to a program or another directory, \
         not the crashing process's working directory, so these tests cannot find them. \
         Run `sysctl -w kernel.core_pattern=core` (as root) and try again."
    );
}

/// Runs `bin` (the parked fixture) with GOTRACEBACK=crash and the core
/// limit raised, waits until it is ready, sends SIGQUIT and waits for it
/// to abort; returns its core and stderr.
pub fn crash_core(bin: &Path) -> Crash {
    crash_after(bin, &["-out", "oracle.txt", "-lifetime", "10m"], 0)
}

/// [`crash_core`] with `args`, `wait_ms` after the fixture is ready.
pub fn crash_after(bin: &Path, args: &[&str], wait_ms: u64) -> Crash {
    check_core_pattern();
    let mut run = Launch::new(bin)
        .args(args)
        .envs(&[("GOTRACEBACK", "crash")])
        .core_dumps()
        .start();
    settle_after_ready(run.pid);
    std::thread::sleep(std::time::Duration::from_millis(wait_ms));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(run.pid, libc::SIGQUIT) };
    let status = run.child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "GOTRACEBACK=crash should abort on SIGQUIT: {status:?}\n{}",
        run.stderr()
    );
    assert!(
        status.core_dumped(),
        "the fixture aborted without a core (RLIMIT_CORE, core_pattern?)"
    );
    let core = find_core(run.dir.path(), run.pid);
    let stderr = run.stderr();
    Crash {
        _run: run,
        core,
        stderr,
    }
}

/// Waits (up to 5 s) until no thread of `pid` is still inside the
/// `write` of its `ready` line: a goroutine caught there is printed as
/// `[syscall]` by the crash and may have left the syscall (`[runnable]`)
/// by the time the core is written, a race of the test, not of gopeek.
pub fn settle_after_ready(pid: i32) {
    const SYS_WRITE: &str = "1";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let writing = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.filter_map(|e| e.ok()).any(|e| {
                    std::fs::read_to_string(e.path().join("syscall"))
                        .is_ok_and(|s| s.split_whitespace().next() == Some(SYS_WRITE))
                })
            })
            .unwrap_or(false);
        if !writing {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The core the kernel wrote in `dir` (`core` or `core.PID`).
pub fn find_core(dir: &Path, pid: i32) -> PathBuf {
    for name in ["core".to_string(), format!("core.{pid}")] {
        if dir.join(&name).exists() {
            return dir.join(name);
        }
    }
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("core") || n.ends_with(".core"))
        })
        .unwrap_or_else(|| panic!("no core in {}", dir.display()))
}

/// The goroutines of the crash text. The M that got SIGQUIT prints every
/// goroutine; a goroutine running on another M is "stack unavailable"
/// there, and that M prints it in full in its own section (after a
/// `-----` line), which is the block kept for it.
pub fn crash_blocks(stderr: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for section in stderr.split("\n-----\n") {
        let start = section.find("goroutine ").unwrap_or(section.len());
        for b in parse_dump(&section[start..]) {
            match out.iter_mut().find(|o| o.id == b.id && b.id != 0) {
                Some(o) if unavailable(o) && !unavailable(&b) => *o = b,
                Some(_) => {}
                None => out.push(b),
            }
        }
    }
    out
}

/// Go's placeholder for a goroutine another thread runs.
pub fn unavailable(b: &Block) -> bool {
    b.lines
        .first()
        .is_some_and(|l| l.contains("stack unavailable"))
}
