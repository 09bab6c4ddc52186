//! arm64 fixtures (scripts/build-fixtures, modes arm64 and
//! arm64-stripped) run under qemu-user, which writes
//! the guest's core as `qemu_<name>_<date>-<time>_<pid>.core` in the
//! working directory when RLIMIT_CORE allows.

use crate::common::*;
use crate::crash::{check_core_pattern, settle_after_ready, Crash};
use std::path::{Path, PathBuf};

/// The `parked` fixture for linux/arm64 (CGO_ENABLED=0), built by
/// scripts/build-fixtures into target/fixtures/go1.N/MODE/parked (MODE:
/// arm64 or arm64-stripped), or `None` (a note) when it is missing.
pub fn arm64_parked(version: &str, stripped: bool) -> Option<PathBuf> {
    let mode = if stripped { "arm64-stripped" } else { "arm64" };
    fixture(version, mode, "parked")
}

/// Runs `bin` under qemu-aarch64 with GOTRACEBACK=crash, sends SIGQUIT
/// to qemu (which hands it to the guest), and returns the guest's core.
pub fn qemu_crash(bin: &Path) -> Crash {
    check_core_pattern();
    let qemu = Path::new("/usr/bin/qemu-aarch64");
    assert!(
        qemu.exists(),
        "qemu-aarch64 is installed by scripts/setup (qemu-user)"
    );
    let mut run = Launch::new(qemu)
        .args(&[
            bin.to_str().unwrap(),
            "-out",
            "oracle.txt",
            "-lifetime",
            "10m",
        ])
        .envs(&[("GOTRACEBACK", "crash")])
        .core_dumps()
        .start();
    // As natively: not while the guest's main goroutine is still in (or,
    // under qemu, just back from) the `write` of its ready line, or the
    // crash prints it `[syscall]` and the core shows it `[runnable]` (seen
    // about once in 30 runs). The guest's return from the host's `write`
    // to its park is not visible in /proc: a short wait covers it.
    settle_after_ready(run.pid);
    std::thread::sleep(std::time::Duration::from_millis(100));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(run.pid, libc::SIGQUIT) };
    let _ = run.child.wait().unwrap();
    let core = std::fs::read_dir(run.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("qemu_") && n.ends_with(".core"))
        })
        .unwrap_or_else(|| panic!("qemu wrote no guest core; stderr:\n{}", run.stderr()));
    // qemu's own (host) core, if the kernel wrote one, is not needed.
    let _ = std::fs::remove_file(run.dir.path().join("core"));
    let stderr = run.stderr();
    Crash {
        _run: run,
        core,
        stderr,
    }
}
