//! What still works, and what no longer does, once gopeek has dropped from
//! root to an unprivileged user with a target already seized (issue 4).
//!
//! The drop cannot be undone, so the checks run in a helper process: the
//! test binary re-runs itself with `GOPEEK_DROP_HELPER` set. As root, the
//! helper opens `/proc/PID/mem` ([`LiveMemory::open`]), seizes a target
//! owned by another user (by hand with raw ptrace on its own thread, or
//! with [`SeizedProcess`]), drops with [`drop_to`], and then checks:
//!
//! * `process_vm_readv` is refused (EPERM) and [`LiveMemory`] reads the
//!   same bytes through the descriptor opened before the drop, reporting
//!   that it switched to `/proc/PID/mem`;
//! * ptrace requests on the already-seized threads still work: GETREGS and
//!   DETACH by hand, and `SeizedProcess::detach` with no detach error;
//! * a new PTRACE_SEIZE of another thread of the target is refused;
//! * `setuid(0)` fails.
//!
//! Runs only as root.

mod common;

use common::Launch;
use gopeek::memory::Memory;
use gopeek::process::{proc_fs, LiveMemory, SeizeOptions, SeizedProcess};
use gopeek::sudo::privilege::{drop_to, SudoContext};
use nix::sys::ptrace;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::process::Command;
use std::time::Duration;

const HELPER_ENV: &str = "GOPEEK_DROP_HELPER";
const TARGET_ENV: &str = "GOPEEK_DROP_TARGET";
/// An unprivileged uid/gid that owns nothing (it need not exist).
const DROP_TO: u32 = 54_329;
/// `nobody`, the target's owner: another user than the one dropped to.
const TARGET_UID: u32 = 65_534;

fn check(ok: bool, what: &str) {
    if !ok {
        eprintln!("helper: FAILED: {what}");
        std::process::exit(1);
    }
    eprintln!("helper: ok: {what}");
}

fn helper(pid: i32) -> ! {
    // A readable, mapped range of the target, found while still root.
    let maps = proc_fs::read_maps(pid).expect("maps as root");
    let m = maps
        .iter()
        .find(|m| m.readable && m.end - m.start >= 64)
        .expect("a readable mapping");
    let mut before = [0u8; 64];
    let mem = LiveMemory::open(pid).expect("/proc/PID/mem as root");
    mem.read_at(m.start, &mut before).expect("read as root");

    // A thread of the target, held by hand from this thread.
    let by_hand = Pid::from_raw(pid);
    ptrace::seize(by_hand, ptrace::Options::empty()).expect("seize by hand");
    ptrace::interrupt(by_hand).expect("interrupt by hand");
    waitpid(by_hand, Some(WaitPidFlag::__WALL)).expect("wait for the stop");

    drop_to(&SudoContext {
        uid: DROP_TO,
        gid: DROP_TO,
        user: "dropped".into(),
    })
    .expect("drop");
    // SAFETY: getuid/geteuid cannot fail.
    check(
        unsafe { (libc::getuid(), libc::geteuid()) } == (DROP_TO, DROP_TO),
        "running as the unprivileged user",
    );
    // SAFETY: must fail.
    check(unsafe { libc::setuid(0) } != 0, "setuid(0) is refused");

    // ptrace on the thread seized before the drop.
    let regs = ptrace::getregs(by_hand);
    check(
        regs.is_ok(),
        "PTRACE_GETREGS on a thread seized before the drop",
    );
    check(
        ptrace::detach(by_hand, None).is_ok(),
        "PTRACE_DETACH of a thread seized before the drop",
    );
    // A new seize is refused now.
    check(
        ptrace::seize(by_hand, ptrace::Options::empty()) == Err(nix::errno::Errno::EPERM),
        "a new PTRACE_SEIZE is refused after the drop",
    );

    // Memory: process_vm_readv refused, the mem fd opened before still reads.
    let mut buf = [0u8; 64];
    let local = [libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    }];
    let remote = [libc::iovec {
        iov_base: m.start as usize as *mut libc::c_void,
        iov_len: buf.len(),
    }];
    // SAFETY: valid iovecs over a local buffer.
    let r = unsafe { libc::process_vm_readv(pid, local.as_ptr(), 1, remote.as_ptr(), 1, 0) };
    check(
        r < 0 && nix::errno::Errno::last() == nix::errno::Errno::EPERM,
        "process_vm_readv is refused after the drop",
    );
    let mut after = [0u8; 64];
    check(
        mem.read_at(m.start, &mut after).is_ok(),
        "LiveMemory still reads after the drop",
    );
    check(after == before, "and reads the same bytes");
    check(mem.uses_proc_mem(), "through the /proc/PID/mem descriptor");
    std::process::exit(0);
}

/// A SeizedProcess taken as root keeps working across the drop: memory
/// through the mem fd, and its detach (a ptrace request) after the drop.
fn helper_seized(pid: i32) -> ! {
    let mem = LiveMemory::open(pid).expect("/proc/PID/mem as root");
    let maps = proc_fs::read_maps(pid).expect("maps as root");
    let m = maps
        .iter()
        .find(|m| m.readable)
        .expect("a readable mapping");
    let seized = SeizedProcess::seize(pid, &SeizeOptions::default()).expect("seize as root");
    drop_to(&SudoContext {
        uid: DROP_TO,
        gid: DROP_TO,
        user: "dropped".into(),
    })
    .expect("drop");
    let mut b = [0u8; 16];
    check(
        mem.read_at(m.start, &mut b).is_ok(),
        "read while held, after the drop",
    );
    check(seized.check_budget().is_ok(), "still held");
    let stats = seized.detach();
    check(
        stats.threads > 0 && stats.detach_errors == 0 && stats.vanished == 0,
        "SeizedProcess::detach after the drop: every thread detached without error",
    );
    std::process::exit(0);
}

#[test]
fn ptrace_and_proc_mem_keep_working_after_the_drop() {
    if let Ok(mode) = std::env::var(HELPER_ENV) {
        let pid: i32 = std::env::var(TARGET_ENV).unwrap().parse().unwrap();
        match mode.as_str() {
            "manual" => helper(pid),
            _ => helper_seized(pid),
        }
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: skipping, needs root");
        return;
    }
    for mode in ["manual", "seized"] {
        // A multi-threaded target owned by another user than the one the
        // helper drops to: `sleep` is enough for memory and registers.
        let target = Launch::new("/bin/sleep".as_ref())
            .args(&["120"])
            .owner(TARGET_UID, TARGET_UID)
            .spawn();
        std::thread::sleep(Duration::from_millis(100));
        let pid = target.pid;
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ptrace_and_proc_mem_keep_working_after_the_drop",
                "--nocapture",
            ])
            .env(HELPER_ENV, mode)
            .env(TARGET_ENV, pid.to_string())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        drop(target);
        assert!(out.status.success(), "helper ({mode}) failed:\n{log}");
        assert!(log.contains("helper: ok: "), "{log}");
        assert!(
            status.contains("TracerPid:\t0\n"),
            "{mode}: target left traced"
        );
        assert!(!status.contains("State:\tt"), "{mode}: target left stopped");
    }
}
