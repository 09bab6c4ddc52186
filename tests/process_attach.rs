//! Live tests of `gopeek::process` against real processes.
//!
//! Targets: `tests/targets/heartbeat` (Go, stdlib only: prints `beat=N
//! usr1=M` every 20 ms and keeps several threads busy) and
//! `tests/targets/sigcount.c` (C: counts queued real-time signals exactly).
//! Both are built on first use under `target/tmp/`.
//!
//! Needs Linux, permission to ptrace children (root or CAP_SYS_PTRACE, or
//! Yama ptrace_scope <= 1), a C compiler and a Go toolchain
//! (`/usr/lib/go-1.27/bin/go`, or set `GOPEEK_TEST_GO`).
//!
//! Some checks must happen in another process (a seccomp filter cannot be
//! removed; killing the tracer must not kill the test). For those the test
//! binary re-runs itself: `helper_entry` does nothing in a normal run, and
//! runs a helper mode when `GOPEEK_PROCESS_TEST_HELPER` is set.

use gopeek::binary::elf::GoBinary;
use gopeek::memory::{Memory, MemoryExt};
use gopeek::process::proc_fs::{self, ProcStatus};
use gopeek::process::seccomp;
use gopeek::process::{LiveMemory, ProcessError, SeizeOptions, SeizedProcess, StopKind};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const HELPER_ENV: &str = "GOPEEK_PROCESS_TEST_HELPER";
const TARGET_ENV: &str = "GOPEEK_PROCESS_TEST_TARGET";

// ---------------------------------------------------------------------------
// Building and running targets.

fn tmpdir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn go_tool() -> PathBuf {
    if let Some(p) = std::env::var_os("GOPEEK_TEST_GO") {
        return p.into();
    }
    let p = PathBuf::from("/usr/lib/go-1.27/bin/go");
    if p.exists() {
        p
    } else {
        PathBuf::from("go")
    }
}

fn build_heartbeat(pie: bool) -> PathBuf {
    let out = tmpdir().join(if pie { "heartbeat-pie" } else { "heartbeat" });
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/targets/heartbeat");
    let mut cmd = Command::new(go_tool());
    cmd.current_dir(&src)
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", tmpdir().join("gocache"))
        .env("GOPATH", tmpdir().join("gopath"))
        .env("GOFLAGS", "-buildvcs=false")
        .env("CGO_ENABLED", "0")
        .arg("build");
    if pie {
        cmd.arg("-buildmode=pie");
    }
    cmd.arg("-o").arg(&out).arg(".");
    let st = cmd.status().unwrap_or_else(|e| {
        panic!("cannot run the Go toolchain {:?}: {e}; install Go (scripts/setup) or set GOPEEK_TEST_GO", go_tool())
    });
    assert!(st.success(), "go build of tests/targets/heartbeat failed");
    out
}

fn heartbeat() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build_heartbeat(false))
}

fn heartbeat_pie() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build_heartbeat(true))
}

fn sigcount() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = tmpdir().join("sigcount");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/targets/sigcount.c");
        let st = Command::new("cc")
            .args(["-O1", "-pthread", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("run cc");
        assert!(st.success(), "cc tests/targets/sigcount.c failed");
        out
    })
}

/// A target process printing `beat=N x=M` lines; killed on drop.
struct Target {
    child: Child,
    pid: i32,
    last: Arc<Mutex<(u64, u64)>>,
}

impl Target {
    fn start(bin: &Path, args: &[&str]) -> Target {
        let t = Target::spawn(bin, args);
        assert!(
            t.wait_for(|c| c.0 >= 2, Duration::from_secs(20)),
            "target {} never printed a heartbeat",
            bin.display()
        );
        t
    }

    /// Starts the target without waiting for it to come up.
    fn spawn(bin: &Path, args: &[&str]) -> Target {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let pid = child.id() as i32;
        let out = child.stdout.take().expect("piped stdout");
        let last = Arc::new(Mutex::new((0u64, 0u64)));
        let sink = last.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mut v = (0, 0);
                for tok in line.split_whitespace() {
                    if let Some((k, x)) = tok.split_once('=') {
                        let x = x.parse().unwrap_or(0);
                        if k == "beat" {
                            v.0 = x
                        } else {
                            v.1 = x
                        }
                    }
                }
                *sink.lock().unwrap() = v;
            }
        });
        Target { child, pid, last }
    }

    fn counters(&self) -> (u64, u64) {
        *self.last.lock().unwrap()
    }

    fn wait_for(&self, pred: impl Fn((u64, u64)) -> bool, timeout: Duration) -> bool {
        wait_until(timeout, || pred(self.counters()))
    }

    /// The heartbeat advances by at least 3 within a few seconds.
    fn runs(&self) -> bool {
        let b = self.counters().0;
        self.wait_for(|c| c.0 >= b + 3, Duration::from_secs(10))
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `(tid, state letter)` of every live thread of `pid`.
fn thread_states(pid: i32) -> Vec<(i32, char)> {
    proc_fs::thread_ids(pid)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| proc_fs::thread_state(pid, t).ok().map(|s| (t, s)))
        .collect()
}

/// No thread is stopped by a tracer or traced by anyone.
fn released(pid: i32) -> bool {
    let tids = proc_fs::thread_ids(pid).unwrap_or_default();
    !tids.is_empty()
        && tids.iter().all(|&t| {
            proc_fs::thread_state(pid, t).map_or(true, |s| s != 't')
                && proc_fs::thread_tracer_pid(pid, t).map_or(true, |p| p.is_none())
        })
}

fn wait_released(pid: i32) -> bool {
    wait_until(Duration::from_secs(10), || released(pid))
}

fn all_in_state(pid: i32, state: char) -> bool {
    let st = thread_states(pid);
    !st.is_empty() && st.iter().all(|&(_, s)| s == state)
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: plain syscall.
    unsafe { libc::kill(pid, sig) };
}

fn elf_header_address(pid: i32) -> u64 {
    proc_fs::exe_mapping(pid).expect("exe mapping").start
}

fn opts() -> SeizeOptions {
    SeizeOptions {
        max_pause: Duration::from_secs(10),
        ..SeizeOptions::default()
    }
}

// ---------------------------------------------------------------------------
// Helper processes (the test binary re-run in a helper mode).

struct Helper {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Helper {
    fn start(mode: &str, target: i32, env: &[(&str, &str)]) -> Helper {
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

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a line starting with `prefix` and returns it.
    fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
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

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
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

    fn output(&mut self) -> Vec<String> {
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

/// Entry point of helper processes; a no-op in a normal test run.
#[test]
fn helper_entry() {
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

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn seize_stops_every_thread_reads_memory_and_detach_resumes() {
    let t = Target::start(heartbeat(), &[]);
    assert!(t.runs());
    let s = SeizedProcess::seize(t.pid, &opts()).expect("seize");
    assert_eq!(s.pid(), t.pid);
    let mut ours: Vec<i32> = s.threads().iter().map(|th| th.tid).collect();
    ours.sort_unstable();
    let states = thread_states(t.pid);
    let listed: Vec<i32> = states.iter().map(|&(tid, _)| tid).collect();
    assert_eq!(ours, listed, "every thread of the target is held");
    assert!(
        states.iter().all(|&(_, s)| s == 't'),
        "all threads in tracing stop: {states:?}"
    );
    assert!(
        ours.len() >= 3,
        "a Go program has several threads: {ours:?}"
    );
    for th in s.threads() {
        assert_ne!(th.regs.pc(), 0, "{th:?}");
        assert_ne!(th.regs.sp(), 0, "{th:?}");
        #[cfg(target_arch = "x86_64")]
        assert_ne!(
            th.regs.tls_base(),
            0,
            "Go sets fs_base on every thread: {th:?}"
        );
        // Go's own preemption signal (SIGURG) may be in delivery when the
        // thread stops; it is then handed back on detach.
        assert!(
            th.stop == StopKind::Interrupt || matches!(th.stop, StopKind::SignalDelivery { .. }),
            "{th:?}"
        );
        assert!(matches!(th.state_before, 'R' | 'S' | 'D'), "{th:?}");
    }
    assert!(s.thread(t.pid).is_some());
    // A thread id names its whole process.
    let other = *ours
        .iter()
        .find(|&&tid| tid != t.pid)
        .expect("a second thread");
    match SeizedProcess::seize(other, &opts()) {
        Err(ProcessError::AlreadyTraced { pid, tracer, .. }) => {
            assert_eq!((pid, tracer), (t.pid, std::process::id() as i32));
        }
        r => panic!("expected AlreadyTraced by ourselves, got {r:?}"),
    }
    assert!(proc_fs::tracer_pid(t.pid).unwrap().is_some());
    // Held: no heartbeat.
    let before = t.counters().0;
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        t.counters().0 <= before + 1,
        "the target must not run while held"
    );

    // Memory: the ELF header where the executable is mapped, single and batched.
    let mem = LiveMemory::new(t.pid);
    let base = elf_header_address(t.pid);
    let mut magic = [0u8; 4];
    mem.read_at(base, &mut magic).expect("read ELF header");
    assert_eq!(&magic, b"\x7fELF");
    let mut a = [0u8; 16];
    let mut bad = [0u8; 8];
    let mut c = [0u8; 2];
    let mut reqs: Vec<(u64, &mut [u8])> = vec![(base, &mut a), (8, &mut bad), (base + 16, &mut c)];
    let r = mem.read_batch(&mut reqs);
    assert!(r[0].is_ok() && r[1].is_err() && r[2].is_ok(), "{r:?}");
    assert_eq!(&a[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes(c), 2, "e_type ET_EXEC");
    let copy = mem.copy_ranges(&[(base, 64)]);
    assert_eq!(
        copy.read_u32(base).unwrap(),
        u32::from_le_bytes(*b"\x7fELF")
    );
    assert!(s.check_budget().is_ok());

    let stats = s.detach();
    assert_eq!(stats.threads, ours.len());
    assert!(
        stats.pause >= Duration::from_millis(100) && stats.pause < Duration::from_secs(5),
        "{stats:?}"
    );
    assert!(!stats.budget_exceeded);
    assert!(
        wait_released(t.pid),
        "after detach: {:?}",
        thread_states(t.pid)
    );
    assert!(!thread_states(t.pid).iter().any(|&(_, s)| s == 'T'));
    assert_eq!(proc_fs::tracer_pid(t.pid).unwrap(), None);
    assert!(t.runs(), "heartbeat resumes after detach");
}

#[test]
fn load_bias_matches_the_mapped_text_for_pie_and_non_pie() {
    for (bin, pie) in [(heartbeat(), false), (heartbeat_pie(), true)] {
        let t = Target::start(bin, &[]);
        let exe =
            GoBinary::open(&proc_fs::exe_open_path(t.pid)).expect("open exe via /proc/PID/exe");
        assert_eq!(exe.is_position_independent(), pie);
        let bias = proc_fs::load_bias(t.pid, &exe).expect("load bias");
        if pie {
            assert_ne!(bias, 0);
            assert_eq!(bias & 0xfff, 0);
        } else {
            assert_eq!(bias, 0);
        }
        let text = exe
            .segments()
            .iter()
            .find(|s| s.executable)
            .expect("text segment")
            .clone();
        let want = exe
            .slice_at_vaddr(text.vaddr + 0x100, 256)
            .expect("file text");
        let mut got = vec![0u8; 256];
        LiveMemory::new(t.pid)
            .read_at(text.vaddr + 0x100 + bias, &mut got)
            .expect("read live text");
        assert_eq!(
            got, want,
            "pie={pie}: live text at link address + bias equals the file"
        );
        assert!(proc_fs::exe_path(t.pid).unwrap().ends_with(if pie {
            "heartbeat-pie"
        } else {
            "heartbeat"
        }));
    }
}

#[test]
fn target_stopped_before_stays_stopped_after_detach() {
    let t = Target::start(heartbeat(), &[]);
    kill(t.pid, libc::SIGSTOP);
    assert!(
        wait_until(Duration::from_secs(10), || all_in_state(t.pid, 'T')),
        "{:?}",
        thread_states(t.pid)
    );
    let s = SeizedProcess::seize(t.pid, &opts()).expect("seize a stopped process");
    for th in s.threads() {
        assert_eq!(th.state_before, 'T');
        assert_eq!(
            th.stop,
            StopKind::GroupStop {
                signal: libc::SIGSTOP
            },
            "{th:?}"
        );
        assert_ne!(th.regs.pc(), 0);
    }
    assert!(all_in_state(t.pid, 't'));
    let stats = s.detach();
    assert!(stats.threads > 0);
    // Back in the group-stop, untraced; it must not run.
    assert!(
        wait_until(Duration::from_secs(10), || all_in_state(t.pid, 'T')
            && released(t.pid)),
        "{:?}",
        thread_states(t.pid)
    );
    let before = t.counters().0;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(t.counters().0, before, "still stopped");
    kill(t.pid, libc::SIGCONT);
    assert!(t.runs(), "runs after SIGCONT");
}

#[test]
fn killed_or_signalled_tracer_leaves_target_running() {
    let t = Target::start(heartbeat(), &[]);
    for (sig, env) in [
        (libc::SIGKILL, None),
        (libc::SIGINT, None),
        (libc::SIGTERM, None),
        (libc::SIGHUP, None),
        (libc::SIGPIPE, Some(("GOPEEK_TEST_SIGPIPE", "default"))),
    ] {
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let mut h = Helper::start("hold", t.pid, &env);
        h.expect("READY", Duration::from_secs(60));
        assert!(
            all_in_state(t.pid, 't'),
            "held by the helper: {:?}",
            thread_states(t.pid)
        );
        let tracer = proc_fs::tracer_pid(t.pid).unwrap().expect("traced");
        assert_eq!(
            ProcStatus::read(tracer).unwrap().tgid,
            h.pid(),
            "TracerPid is the helper's tracer thread"
        );
        kill(h.pid(), sig);
        let st = h.wait_exit(Duration::from_secs(10)).expect("helper dies");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(sig), "helper killed by signal {sig}");
        assert!(
            wait_released(t.pid),
            "signal {sig}: target released: {:?}",
            thread_states(t.pid)
        );
        assert!(t.runs(), "signal {sig}: heartbeat resumes");
    }

    // SIGPIPE as Rust leaves it (ignored): the holder carries on and detaches normally.
    let mut h = Helper::start("hold", t.pid, &[("GOPEEK_TEST_HOLD_MS", "800")]);
    h.expect("READY", Duration::from_secs(60));
    kill(h.pid(), libc::SIGPIPE);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        all_in_state(t.pid, 't'),
        "still held after an ignored SIGPIPE"
    );
    h.expect("DETACHED", Duration::from_secs(10));
    assert!(h
        .wait_exit(Duration::from_secs(10))
        .expect("helper exits")
        .success());
    assert!(wait_released(t.pid));
    assert!(t.runs());
}

#[test]
fn killed_tracer_leaves_a_stopped_target_stopped() {
    let t = Target::start(heartbeat(), &[]);
    kill(t.pid, libc::SIGSTOP);
    assert!(wait_until(Duration::from_secs(10), || all_in_state(
        t.pid, 'T'
    )));
    let mut h = Helper::start("hold", t.pid, &[]);
    h.expect("READY", Duration::from_secs(60));
    assert!(all_in_state(t.pid, 't'));
    kill(h.pid(), libc::SIGKILL);
    h.wait_exit(Duration::from_secs(10)).expect("helper dies");
    assert!(
        wait_until(Duration::from_secs(10), || all_in_state(t.pid, 'T')
            && released(t.pid)),
        "{:?}",
        thread_states(t.pid)
    );
    kill(t.pid, libc::SIGCONT);
    assert!(t.runs());
}

#[test]
fn ctrl_z_of_the_tracer_takes_effect_after_detach() {
    let t = Target::start(heartbeat(), &[]);
    let mut h = Helper::start(
        "hold",
        t.pid,
        &[("GOPEEK_TEST_DEFER", "1"), ("GOPEEK_TEST_HOLD_MS", "700")],
    );
    h.expect("READY", Duration::from_secs(60));
    kill(h.pid(), libc::SIGTSTP);
    std::thread::sleep(Duration::from_millis(200));
    assert_ne!(
        proc_fs::process_state(h.pid()).unwrap(),
        'T',
        "the helper must not stop while it holds the target"
    );
    assert!(all_in_state(t.pid, 't'));
    // After its hold the helper detaches, then stops as asked.
    assert!(
        wait_until(Duration::from_secs(10), || proc_fs::process_state(h.pid())
            .ok()
            == Some('T')),
        "helper stops after detaching"
    );
    assert!(wait_released(t.pid));
    assert!(t.runs(), "the target runs while the helper is stopped");
    kill(h.pid(), libc::SIGCONT);
    h.expect("DETACHED", Duration::from_secs(10));
    assert!(h
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .success());
}

#[test]
fn signals_arriving_while_seizing_are_never_swallowed() {
    let t = Target::start(sigcount(), &[]);
    let sig = libc::SIGRTMIN() + 2;
    const N: u64 = 3000;
    let pid = t.pid;
    let spammer = std::thread::spawn(move || {
        for i in 0..N {
            kill(pid, sig);
            if i % 4 == 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    });
    let (mut cycles, mut reinjected) = (0usize, 0usize);
    while !spammer.is_finished() {
        let s = SeizedProcess::seize(t.pid, &opts()).expect("seize");
        reinjected += s
            .threads()
            .iter()
            .filter(|th| matches!(th.stop, StopKind::SignalDelivery { .. }))
            .count();
        let st = s.detach();
        assert_eq!(st.detach_errors, 0);
        cycles += 1;
    }
    spammer.join().unwrap();
    let all = t.wait_for(|c| c.1 >= N, Duration::from_secs(20));
    println!("{cycles} seize cycles while {N} signals were sent; {reinjected} signal-delivery-stops re-injected");
    assert!(all, "received {} of {N} signals", t.counters().1);
    assert_eq!(t.counters().1, N, "no signal lost, none duplicated");
    assert!(wait_released(t.pid));
}

#[test]
fn target_exiting_while_held_or_attaching_never_hangs() {
    // Killed while held: detach still returns, reads fail cleanly.
    let t = Target::start(heartbeat(), &[]);
    let s = SeizedProcess::seize(t.pid, &opts()).expect("seize");
    kill(t.pid, libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let stats = s.detach();
    assert!(started.elapsed() < Duration::from_secs(2), "{stats:?}");
    let mut b = [0u8; 4];
    let base = 0x400000;
    assert!(LiveMemory::new(t.pid).read_at(base, &mut b).is_err());
    drop(t);

    // Exiting on its own at varying moments, seized over and over from
    // the moment it was started (while the Go runtime creates its threads)
    // until it is gone.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut ok, mut exited) = (0, 0);
    for round in 0..12u64 {
        let t = Target::spawn(
            heartbeat(),
            &["-exit-after", &format!("{}ms", 20 + round * 10)],
        );
        loop {
            assert!(Instant::now() < deadline, "exit race took too long");
            match SeizedProcess::seize(t.pid, &opts()) {
                Ok(s) => {
                    drop(s);
                    ok += 1;
                }
                Err(
                    ProcessError::Exited { .. }
                    | ProcessError::NoSuchProcess { .. }
                    | ProcessError::Zombie { .. },
                ) => {
                    exited += 1;
                    break;
                }
                Err(e) => panic!("unexpected error while the target exits: {e}"),
            }
        }
    }
    println!("exit race: {ok} successful seizes, {exited} clean 'exited' results");
}

#[test]
fn thread_churn_every_thread_is_caught() {
    let t = Target::start(heartbeat(), &["-churn"]);
    let mut rescans = 0;
    let mut vanished = 0;
    for _ in 0..100 {
        let s = SeizedProcess::seize(t.pid, &opts()).expect("seize a churning process");
        let held: Vec<i32> = s.threads().iter().map(|th| th.tid).collect();
        for (tid, state) in thread_states(t.pid) {
            assert!(
                held.contains(&tid) || matches!(state, 'Z' | 'X'),
                "thread {tid} ({state}) escaped; held {held:?}"
            );
            if held.contains(&tid) {
                assert_eq!(state, 't', "thread {tid}");
            }
        }
        let st = s.detach();
        rescans += st.rescans;
        vanished += st.vanished;
    }
    println!("churn: {rescans} rescans, {vanished} threads vanished mid-attach over 100 cycles");
    assert!(wait_released(t.pid));
    assert!(t.runs());
}

#[test]
fn clear_errors_for_bad_targets() {
    let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(i32::MAX - 1);
    for pid in [pid_max + 1, 0, -5] {
        let e = SeizedProcess::seize(pid, &opts()).unwrap_err();
        assert!(matches!(e, ProcessError::NoSuchProcess { .. }), "{e:?}");
        assert!(e.to_string().starts_with("no such process"), "{e}");
    }
    let e = SeizedProcess::seize(std::process::id() as i32, &opts()).unwrap_err();
    assert!(matches!(e, ProcessError::SelfAttach { .. }), "{e:?}");

    // A zombie: a child that exited and is not reaped yet.
    let mut z = Command::new("true").spawn().expect("spawn true");
    let zp = z.id() as i32;
    assert!(wait_until(Duration::from_secs(10), || proc_fs::is_zombie(
        zp
    )
    .unwrap_or(false)));
    let e = SeizedProcess::seize(zp, &opts()).unwrap_err();
    assert!(matches!(e, ProcessError::Zombie { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&format!(
            "process {zp} is a zombie (exited, not yet reaped)"
        )),
        "{e}"
    );
    z.wait().unwrap();

    // Already traced by another process: name it.
    let t = Target::start(heartbeat(), &[]);
    let mut h = Helper::start("hold", t.pid, &[]);
    h.expect("READY", Duration::from_secs(60));
    let e = SeizedProcess::seize(t.pid, &opts()).unwrap_err();
    match &e {
        ProcessError::AlreadyTraced {
            tracer,
            tracer_comm,
            ..
        } => {
            assert_eq!(*tracer, h.pid());
            assert_eq!(*tracer_comm, proc_fs::comm(h.pid()).unwrap());
        }
        other => panic!("expected AlreadyTraced, got {other:?}"),
    }
    assert!(
        e.to_string()
            .contains(&format!("already traced by PID {}", h.pid())),
        "{e}"
    );
    drop(h);
    assert!(wait_released(t.pid));

    // Budget: a zero budget cannot even finish stopping; nothing stays held.
    let o = SeizeOptions {
        max_pause: Duration::ZERO,
        ..SeizeOptions::default()
    };
    match SeizedProcess::seize(t.pid, &o) {
        Err(e @ ProcessError::PauseBudgetExceeded { .. }) => {
            assert!(e.to_string().contains("--max-pause"), "{e}")
        }
        other => panic!("expected PauseBudgetExceeded, got {other:?}"),
    }
    assert!(wait_released(t.pid), "{:?}", thread_states(t.pid));
    assert!(t.runs());
}

#[test]
fn pause_budget_releases_a_target_the_caller_holds_too_long() {
    let t = Target::start(heartbeat(), &[]);
    let o = SeizeOptions {
        max_pause: Duration::from_millis(150),
        ..SeizeOptions::default()
    };
    let s = SeizedProcess::seize(t.pid, &o).expect("seize");
    assert!(s.check_budget().is_ok());
    // The caller "forgets" to detach; the tracer lets go at the deadline.
    assert!(wait_released(t.pid), "released at the deadline");
    let e = s.check_budget().unwrap_err();
    assert!(
        matches!(e, ProcessError::PauseBudgetExceeded { .. }),
        "{e:?}"
    );
    let st = s.detach();
    assert!(st.budget_exceeded, "{st:?}");
    assert!(
        st.pause >= Duration::from_millis(150) && st.pause < Duration::from_secs(2),
        "{st:?}"
    );
    assert!(t.runs());
}

#[test]
fn two_hundred_seize_detach_cycles() {
    let t = Target::start(heartbeat(), &[]);
    let mem = LiveMemory::new(t.pid);
    let base = elf_header_address(t.pid);
    let beat0 = t.counters().0;
    let started = Instant::now();
    let mut pauses = Vec::with_capacity(200);
    let mut stops = Vec::with_capacity(200);
    let mut threads = 0;
    for i in 0..200 {
        let s = SeizedProcess::seize(t.pid, &opts()).expect("seize");
        threads = s.threads().len();
        let mut b = [0u8; 4];
        mem.read_at(base, &mut b).expect("read");
        assert_eq!(&b, b"\x7fELF");
        let st = s.detach();
        assert_eq!(st.threads, threads);
        pauses.push(st.pause_us());
        stops.push(st.stop_latency.as_micros() as u64);
        if i % 50 == 0 {
            assert!(wait_released(t.pid));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = started.elapsed();
    assert!(wait_released(t.pid), "{:?}", thread_states(t.pid));
    assert!(!thread_states(t.pid)
        .iter()
        .any(|&(_, s)| s == 'T' || s == 't'));
    assert!(t.runs());
    assert!(
        t.counters().0 > beat0 + elapsed.as_millis() as u64 / 20 / 3,
        "heartbeat advanced during the cycles"
    );
    pauses.sort_unstable();
    let median = pauses[pauses.len() / 2];
    let p90 = pauses[pauses.len() * 9 / 10];
    let max = *pauses.last().unwrap();
    stops.sort_unstable();
    println!(
        "200 cycles, {threads} threads: pause median {median} us, p90 {p90} us, max {max} us; \
         stop latency median {} us, max {} us",
        stops[stops.len() / 2],
        stops[stops.len() - 1]
    );
    assert!(median < 50_000, "median pause {median} us");
}

#[test]
fn seccomp_filters_refuse_writes_and_keep_reads() {
    let t = Target::start(heartbeat(), &[]);
    let mut h = Helper::start("seccomp", t.pid, &[]);
    let st = h
        .wait_exit(Duration::from_secs(120))
        .expect("helper finishes");
    let out = h.output();
    assert!(st.success(), "seccomp helper failed: {out:#?}");
    for l in &out {
        println!("{l}");
    }
    assert!(
        out.iter().any(|l| l.ends_with("DONE failures=0")),
        "{out:#?}"
    );
    assert!(wait_released(t.pid));
    assert!(t.runs());
}

#[test]
fn reads_survive_dropping_privileges_and_eperm_is_explained() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root to drop privileges");
        return;
    }
    let t = Target::start(heartbeat(), &[]);
    let mut h = Helper::start("drop-privs", t.pid, &[]);
    let st = h
        .wait_exit(Duration::from_secs(60))
        .expect("helper finishes");
    let out = h.output();
    assert!(st.success(), "drop-privs helper failed: {out:#?}");
    assert!(released(t.pid));
}

#[test]
fn termination_signals_have_no_handlers() {
    // The design relies on default (or ignored) dispositions; see signals.rs.
    assert!(gopeek::process::signals::termination_signals_with_handlers().is_empty());
}

#[test]
fn panic_while_held_releases_the_target_during_unwinding() {
    let t = Target::start(heartbeat(), &[]);
    let pid = t.pid;
    let r = std::panic::catch_unwind(move || {
        let _s = SeizedProcess::seize(pid, &opts()).expect("seize");
        assert!(all_in_state(pid, 't'));
        panic!("a bug while the target is held");
    });
    assert!(r.is_err());
    // Released by Drop during unwinding, while this process lives on.
    assert!(released(t.pid) || wait_released(t.pid));
    assert!(t.runs());
}

#[test]
fn seized_process_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<SeizedProcess>();
    let t = Target::start(heartbeat(), &[]);
    let s = SeizedProcess::seize(t.pid, &opts()).expect("seize");
    // Detached from another thread than the one that seized.
    let stats = std::thread::spawn(move || s.detach()).join().unwrap();
    assert!(stats.threads > 0 && stats.detach_errors == 0, "{stats:?}");
    assert!(wait_released(t.pid));
    assert!(t.runs());
}

#[test]
fn deleted_executable_is_still_found_and_read() {
    let copy = tmpdir().join(format!("heartbeat-deleted-{}", std::process::id()));
    std::fs::copy(heartbeat_pie(), &copy).expect("copy target");
    let t = Target::start(&copy, &[]);
    std::fs::remove_file(&copy).expect("delete the running executable");
    let shown = proc_fs::exe_path(t.pid).unwrap();
    assert!(shown.to_string_lossy().ends_with(" (deleted)"), "{shown:?}");
    // Matched by device and inode, opened through /proc/PID/exe.
    let exe = GoBinary::open(&proc_fs::exe_open_path(t.pid))
        .expect("open a deleted exe via /proc/PID/exe");
    let m = proc_fs::exe_mapping(t.pid).expect("mapping of a deleted exe");
    assert!(m.path.ends_with(" (deleted)"), "{m:?}");
    let bias = proc_fs::load_bias(t.pid, &exe).expect("bias");
    assert_eq!(m.start, exe.lowest_load_address().unwrap() + bias);
    let mut hdr = [0u8; 4];
    LiveMemory::new(t.pid).read_at(m.start, &mut hdr).unwrap();
    assert_eq!(&hdr, b"\x7fELF");
}
