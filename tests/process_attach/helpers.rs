//! tests/process_attach.rs: helper processes, the test binary re-run in a
//! helper mode (`helper_entry` with GOPEEK_PROCESS_TEST_HELPER set), for
//! what must happen in another process: a seccomp filter cannot be removed,
//! and killing the tracer must not kill the test.

use super::support::{elf_header_address, opts, tmpdir};
use gopeek::memory::Memory;
use gopeek::process::seccomp;
use gopeek::process::{LiveMemory, ProcessError, SeizeOptions, SeizedProcess};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const HELPER_ENV: &str = "GOPEEK_PROCESS_TEST_HELPER";
pub const TARGET_ENV: &str = "GOPEEK_PROCESS_TEST_TARGET";

pub struct Helper {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Helper {
    pub fn start(mode: &str, target: i32, env: &[(&str, &str)]) -> Helper {
        let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
        cmd.args(["--exact", "helper_entry", "--nocapture", "--test-threads=1"])
            .env(HELPER_ENV, mode)
            .env(TARGET_ENV, target.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Own process group, so that its job-control stop (SIGTSTP)
            // is not discarded as in an orphaned group, and so that signals
            // sent to the test's group do not reach it.
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn helper");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Helper {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a line starting with `prefix` and returns it.
    pub fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    // libtest prints "test helper_entry ... " without a newline first.
                    if let Some(i) = l.find(prefix) {
                        return l[i..].to_string();
                    }
                }
                Err(_) => panic!(
                    "helper never printed {prefix:?}; it printed: {:#?}",
                    self.seen
                ),
            }
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn output(&mut self) -> Vec<String> {
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(l);
        }
        self.seen.clone()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The helper mode named by GOPEEK_PROCESS_TEST_HELPER, if set: runs it and
/// exits with its code.
pub fn entry() {
    let Ok(mode) = std::env::var(HELPER_ENV) else {
        return;
    };
    let target: i32 = std::env::var(TARGET_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let code = match mode.as_str() {
        "hold" => helper_hold(target),
        "seccomp" => helper_seccomp(target),
        "drop-privs" => helper_drop_privs(target),
        _ => 2,
    };
    std::process::exit(code);
}

fn say(s: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
    let _ = out.flush();
}

/// Seizes the target, says READY, holds it for GOPEEK_TEST_HOLD_MS, detaches.
fn helper_hold(target: i32) -> i32 {
    if std::env::var("GOPEEK_TEST_SIGPIPE").as_deref() == Ok("default") {
        // SAFETY: resetting a disposition.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let hold_ms: u64 = std::env::var("GOPEEK_TEST_HOLD_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60_000);
    let o = SeizeOptions {
        max_pause: Duration::from_secs(600),
        defer_stop_signals: std::env::var("GOPEEK_TEST_DEFER").as_deref() == Ok("1"),
        only_threads: None,
    };
    let s = match SeizedProcess::seize(target, &o) {
        Ok(s) => s,
        Err(e) => {
            say(format!("ERROR {e}"));
            return 1;
        }
    };
    say(format!("READY threads={}", s.threads().len()));
    std::thread::sleep(Duration::from_millis(hold_ms));
    let st = s.detach();
    say(format!("DETACHED pause_us={}", st.pause_us()));
    0
}

fn raw_ptrace(req: u32, tid: i32, addr: usize, data: usize) -> Result<i64, i32> {
    // SAFETY: the callers pass valid pointers for the requests that take one.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ptrace,
            req as libc::c_long,
            tid as libc::c_long,
            addr,
            data,
        )
    };
    if r == -1 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

/// process_vm_writev of 8 bytes into our own variable: what the read-only
/// filter must refuse (it only ever targets this helper itself).
fn vm_write_self(dst: &mut u64, value: u64) -> Result<isize, i32> {
    let src = value;
    let local = libc::iovec {
        iov_base: &src as *const u64 as *mut libc::c_void,
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: dst as *mut u64 as *mut libc::c_void,
        iov_len: 8,
    };
    // SAFETY: both iovecs point at live u64s in this process.
    let r = unsafe { libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

/// Installs both filters and checks what they refuse and what still works.
fn helper_seccomp(target: i32) -> i32 {
    let mut failures: Vec<String> = Vec::new();
    let mut check = |what: &str, ok: bool| {
        say(format!("{} {what}", if ok { "ok  " } else { "FAIL" }));
        if !ok {
            failures.push(what.to_string());
        }
    };
    let mut word = 0u64;
    check(
        "process_vm_writev works before the filter",
        vm_write_self(&mut word, 7) == Ok(8) && word == 7,
    );
    let out_path = tmpdir().join(format!("seccomp-out-{}", std::process::id()));
    let mut out = File::create(&out_path).expect("create output before the filters");

    if let Err(e) = seccomp::install_read_only_filter() {
        say(format!("ERROR {e}"));
        return 1;
    }
    check(
        "process_vm_writev refused with EPERM",
        vm_write_self(&mut word, 9) == Err(libc::EPERM) && word == 7,
    );

    // ptrace on a stopped child, from this (the tracer) thread.
    let mut sleeper = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let sp = sleeper.id() as i32;
    check(
        "PTRACE_SEIZE with options 0 allowed",
        raw_ptrace(0x4206, sp, 0, 0).is_ok(),
    );
    check(
        "PTRACE_INTERRUPT allowed",
        raw_ptrace(0x4207, sp, 0, 0).is_ok(),
    );
    let mut status = 0;
    // SAFETY: valid out-pointer.
    let w = unsafe { libc::waitpid(sp, &mut status, libc::__WALL) };
    check("sleep child stopped", w == sp && libc::WIFSTOPPED(status));
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: zeroed plain struct; GETREGS fills it.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        check(
            "PTRACE_GETREGS allowed",
            raw_ptrace(12, sp, 0, &mut regs as *mut _ as usize).is_ok() && regs.rsp != 0,
        );
        let mut peek = 0u64;
        check(
            "PTRACE_PEEKDATA allowed",
            raw_ptrace(2, sp, regs.rsp as usize, &mut peek as *mut u64 as usize).is_ok(),
        );
        check(
            "PTRACE_POKEDATA refused",
            raw_ptrace(5, sp, regs.rsp as usize, 0x41) == Err(libc::EPERM),
        );
        check(
            "PTRACE_POKETEXT refused",
            raw_ptrace(4, sp, regs.rip as usize, 0xcc) == Err(libc::EPERM),
        );
        check(
            "PTRACE_POKEUSER refused",
            raw_ptrace(6, sp, 0, 0) == Err(libc::EPERM),
        );
        check(
            "PTRACE_SETREGS refused",
            raw_ptrace(13, sp, 0, &regs as *const _ as usize) == Err(libc::EPERM),
        );
        check(
            "PTRACE_ARCH_PRCTL refused",
            raw_ptrace(30, sp, 0, 0x1002) == Err(libc::EPERM),
        );
    }
    check(
        "PTRACE_SETREGSET refused",
        raw_ptrace(0x4205, sp, 1, 0) == Err(libc::EPERM),
    );
    check(
        "PTRACE_SETSIGINFO refused",
        raw_ptrace(0x4203, sp, 0, 0) == Err(libc::EPERM),
    );
    check(
        "PTRACE_SETOPTIONS refused",
        raw_ptrace(0x4200, sp, 0, 0x0010_0000) == Err(libc::EPERM),
    );
    check(
        "PTRACE_KILL refused",
        raw_ptrace(8, sp, 0, 0) == Err(libc::EPERM),
    );
    check(
        "PTRACE_CONT refused",
        raw_ptrace(7, sp, 0, 0) == Err(libc::EPERM),
    );
    check("PTRACE_DETACH allowed", raw_ptrace(17, sp, 0, 0).is_ok());
    check(
        "PTRACE_SEIZE with EXITKILL refused",
        raw_ptrace(0x4206, sp, 0, 0x0010_0000) == Err(libc::EPERM),
    );
    check(
        "PTRACE_ATTACH refused",
        raw_ptrace(16, sp, 0, 0) == Err(libc::EPERM),
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    // Reading still works, and so does a whole seize/detach.
    let mut hdr = [0u8; 4];
    check(
        "LiveMemory reads under the filter",
        LiveMemory::new(target)
            .read_at(elf_header_address(target), &mut hdr)
            .is_ok()
            && &hdr == b"\x7fELF",
    );
    match SeizedProcess::seize(target, &opts()) {
        Ok(s) => {
            let n = s.threads().len();
            let st = s.detach();
            check(
                "SeizedProcess works under the filter",
                n > 0 && st.threads == n,
            );
        }
        Err(e) => check(&format!("SeizedProcess works under the filter: {e}"), false),
    }
    let mem_rw = OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/{target}/mem"));
    say(format!(
        "note: /proc/PID/mem opens for writing under the read-only filter alone: {}",
        mem_rw.is_ok()
    ));
    drop(mem_rw);

    if let Err(e) = seccomp::forbid_open_for_write() {
        say(format!("ERROR {e}"));
        return 1;
    }
    let eperm =
        |r: std::io::Result<File>| r.err().and_then(|e| e.raw_os_error()) == Some(libc::EPERM);
    check(
        "create a new file refused",
        eperm(File::create(tmpdir().join("seccomp-should-not-exist"))),
    );
    check(
        "open /proc/PID/mem for writing refused",
        eperm(
            OpenOptions::new()
                .write(true)
                .open(format!("/proc/{target}/mem")),
        ),
    );
    check(
        "open for append refused",
        eperm(OpenOptions::new().append(true).open(&out_path)),
    );
    check(
        "open for reading allowed",
        File::open("/proc/self/status").is_ok(),
    );
    check(
        "writing an already open output allowed",
        out.write_all(b"ok\n").is_ok(),
    );
    check(
        "new file was not created",
        !tmpdir().join("seccomp-should-not-exist").exists(),
    );
    drop(out);
    let _ = std::fs::remove_file(&out_path);
    say(format!("DONE failures={}", failures.len()));
    i32::from(!failures.is_empty())
}

/// Opens the target's memory as root, drops to nobody, and keeps reading.
fn helper_drop_privs(target: i32) -> i32 {
    let addr = elf_header_address(target);
    let mem = match LiveMemory::open(target) {
        Ok(m) => m,
        Err(e) => {
            say(format!("ERROR open: {e}"));
            return 1;
        }
    };
    // SAFETY: credential syscalls with constant arguments.
    let dropped = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(65534) == 0
            && libc::setuid(65534) == 0
    };
    if !dropped {
        say("ERROR cannot drop privileges (not root?)");
        return 1;
    }
    let mut ok = true;
    // process_vm_readv is now refused...
    let mut b = [0u8; 4];
    let local = libc::iovec {
        iov_base: b.as_mut_ptr().cast(),
        iov_len: 4,
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: 4,
    };
    // SAFETY: local points at `b`.
    let r = unsafe { libc::process_vm_readv(target, &local, 1, &remote, 1, 0) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    say(format!(
        "raw process_vm_readv after the drop: {r} errno {errno:?}"
    ));
    ok &= r == -1 && errno == Some(libc::EPERM);
    // ...but LiveMemory falls back to the fd opened while privileged.
    let mut hdr = [0u8; 4];
    let read = mem.read_at(addr, &mut hdr);
    say(format!(
        "LiveMemory read after the drop: {read:?} {hdr:?} proc_mem={}",
        mem.uses_proc_mem()
    ));
    ok &= read.is_ok() && &hdr == b"\x7fELF" && mem.uses_proc_mem();
    // And attaching is refused with a message that says what to do.
    match SeizedProcess::seize(target, &opts()) {
        Err(e @ ProcessError::PermissionDenied { .. }) => {
            let m = e.to_string();
            say(format!("seize as nobody: {m}"));
            ok &= m.contains(&format!("permission denied attaching to PID {target}"))
                && m.contains("CAP_SYS_PTRACE")
                && m.contains("ptrace_scope")
                && m.contains("the target runs as uid 0, gopeek as uid 65534");
        }
        other => {
            say(format!("FAIL seize as nobody gave {other:?}"));
            ok = false;
        }
    }
    say(format!("DONE ok={ok}"));
    i32::from(!ok)
}
