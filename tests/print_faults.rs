//! Faults for the commands that read a live target briefly and were
//! tested only undisturbed: `gopeek print --consistent` (one hold for the
//! frames, the registers and the values) killed by SIGINT (Ctrl-C) or
//! SIGKILL at many moments, and `gopeek threads` and `print` when the
//! target exits under them. Afterwards the target must be running and
//! untraced (or gone, when it was the one killed), gopeek must never panic
//! or hang, and a target that exited is said in an exit code 5 message
//! naming its PID.
//!
//! Target: `parkedlocals` (Go 1.27 default), which parks goroutines with
//! locals and keeps one spinning in `main.spinRegs` (`-spin`): the running
//! goroutine whose registers `--consistent` reads. GOPEEK_PRINT_FAULT_ITERS
//! overrides the number of signals per test (default 30).

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn iters() -> u64 {
    std::env::var("GOPEEK_PRINT_FAULT_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// A small deterministic generator: the delays are reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn launch(bin: &std::path::Path) -> Running {
    Launch::new(bin)
        .args(&["-out", "oracle.txt", "-lifetime", "10m", "-spin"])
        .kill_with_test()
        .start()
}

/// The goroutine spinning in `main.spinRegs`, from gopeek's own dump.
fn spinner(pid: i32) -> String {
    let out = succeed(gopeek().args(["dump", "--pid", &pid.to_string(), "--format", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| {
            g["frames"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["function"] == "main.spinRegs"))
        })
        .map(|g| g["id"].to_string())
        .unwrap_or_else(|| panic!("no goroutine in main.spinRegs: {v}"))
}

fn print_consistent(pid: i32, g: &str) -> Child {
    gopeek()
        .args(["print", "--pid", &pid.to_string(), "--consistent"])
        .args(["--goroutine", g, "--locals"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stderr_of(child: &mut Child) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

#[test]
fn print_consistent_survives_ctrl_c_and_sigkill() {
    let Some(bin) = fixture("1.27", "default", "parkedlocals") else {
        return;
    };
    let target = launch(&bin);
    let g = spinner(target.pid);
    // How long one undisturbed run takes: the signals land before, during
    // and after the hold.
    let t0 = Instant::now();
    let mut c = print_consistent(target.pid, &g);
    let st = c.wait().unwrap();
    let whole = t0.elapsed();
    assert!(st.success(), "undisturbed print: {}", stderr_of(&mut c));
    let mut rng = Rng(0x5eed_0fc0de);
    let (mut held, mut done, mut killed) = (0, 0, 0);
    for i in 0..iters() {
        let sig = if i % 2 == 0 {
            libc::SIGINT
        } else {
            libc::SIGKILL
        };
        let delay = Duration::from_micros(rng.below(whole.as_micros() as u64 + 1));
        let mut child = print_consistent(target.pid, &g);
        std::thread::sleep(delay);
        if leader_tracer(target.pid) != 0 {
            held += 1;
        }
        let _ = kill(child.id() as i32, sig);
        let mut threads = String::new();
        let st = wait_timeout(&mut child, Duration::from_secs(10), &mut threads)
            .unwrap_or_else(|| panic!("iteration {i}: gopeek hung; its threads: {threads}"));
        let stderr = stderr_of(&mut child);
        let ctx = format!("iteration {i} (signal {sig} after {delay:?}) -> {st}");
        assert!(!stderr.contains("panicked"), "{ctx}: {stderr}");
        // Ctrl-C ends gopeek by the signal (or after it finished, 0);
        // never another failure.
        if st.success() {
            done += 1;
        } else {
            assert!(
                st.signal() == Some(sig) || st.code() == Some(130),
                "{ctx}: {stderr}"
            );
            killed += 1;
        }
        if let Err(e) = wait_running_untraced(target.pid) {
            panic!(
                "{ctx}: target not running untraced: {e}\n{}",
                describe_threads(target.pid)
            );
        }
    }
    eprintln!(
        "{} signals: {killed} ended gopeek, {done} came after it finished, {held} while the target was traced",
        iters()
    );
    // The target is unharmed: the spinner is still where it was.
    assert_eq!(spinner(target.pid), g);
}

/// `threads` and `print` while the target is SIGKILLed: exit 0 (done
/// first) or 5 naming the PID, never a panic, a hang or another code.
#[test]
fn threads_and_print_when_the_target_exits() {
    let Some(bin) = fixture("1.27", "default", "parkedlocals") else {
        return;
    };
    let mut rng = Rng(0xe817_5eed);
    let mut outcomes: std::collections::BTreeMap<String, u32> = Default::default();
    for i in 0..iters() {
        let target = launch(&bin);
        let pid = target.pid;
        let args: Vec<String> = match i % 3 {
            0 => vec!["threads".into(), "--pid".into(), pid.to_string()],
            1 => vec![
                "threads".into(),
                "--pid".into(),
                pid.to_string(),
                "--disasm".into(),
                "4".into(),
            ],
            _ => vec![
                "print".into(),
                "--pid".into(),
                pid.to_string(),
                "--goroutine".into(),
                "1".into(),
                "--locals".into(),
            ],
        };
        let mut child = gopeek()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // An undisturbed run takes about 0.1 s (threads) and 0.2 s (print,
        // most of it reading the DWARF): the kill lands in every phase.
        let span = if args[0] == "print" { 250_000 } else { 120_000 };
        std::thread::sleep(Duration::from_micros(rng.below(span)));
        let _ = kill(pid, libc::SIGKILL);
        let mut threads = String::new();
        let st =
            wait_timeout(&mut child, Duration::from_secs(10), &mut threads).unwrap_or_else(|| {
                panic!("iteration {i} {args:?}: gopeek hung; its threads: {threads}")
            });
        let stderr = stderr_of(&mut child);
        let ctx = format!("iteration {i} {args:?} -> {st}");
        assert!(!stderr.contains("panicked"), "{ctx}: {stderr}");
        match st.code() {
            Some(0) => {}
            Some(5) => assert!(
                stderr.contains(&pid.to_string())
                    && (stderr.contains("exited") || stderr.contains("no such process")),
                "{ctx}: exit 5 must say PID {pid} exited: {stderr}"
            ),
            _ => panic!("{ctx}: want exit 0 or 5: {stderr}"),
        }
        *outcomes.entry(format!("{} -> {st}", args[0])).or_default() += 1;
    }
    eprintln!("{outcomes:?}");
}
