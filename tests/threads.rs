//! `gopeek threads` (issue 12) against other readers of the same threads:
//!
//! * registers equal to gdb's `info registers` of the same thread, read
//!   after gopeek detached (threads parked in a futex syscall, whose user
//!   registers do not move);
//! * `--disasm` addresses and mnemonics equal to `objdump -d` from the same
//!   PC, and branch targets named as objdump names them;
//! * the backtrace of the thread running the stwstuck spinner names
//!   `main.spinNosplit` at a line inside that function;
//! * the `gopeek.threads/1` fields;
//! * a SIGKILL of gopeek during `threads` leaves the target running and
//!   untraced.
//!
//! Target: the `stwstuck` fixture (`-mode=nosplit`: one goroutine spins in
//! a nosplit function while runtime.GC waits for it, so every other thread
//! sleeps in a futex), Go 1.19 and 1.27, default and stripped.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CELLS: [(&str, &str); 4] = [
    ("1.19", "default"),
    ("1.19", "stripped"),
    ("1.27", "default"),
    ("1.27", "stripped"),
];

/// The registers both gdb and gopeek print on linux/amd64.
const REGS: [&str; 24] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs",
];

/// stwstuck with its stop-the-world pending (the spinner spins for 10 min).
fn stuck(bin: &Path) -> Running {
    let calling = Arc::new(AtomicBool::new(false));
    let c2 = calling.clone();
    let t = Launch::new(bin)
        .args(&["-mode=nosplit", "-hold=10m"])
        .on_line(move |l| {
            if l.starts_with("calling ") {
                c2.store(true, Ordering::SeqCst);
            }
        })
        .kill_with_test()
        .start();
    assert!(
        wait_until(Duration::from_secs(10), || calling.load(Ordering::SeqCst)),
        "stwstuck never started its stop-the-world"
    );
    // Let every thread reach its futex sleep.
    std::thread::sleep(Duration::from_millis(300));
    t
}

fn threads_json(pid: i32, extra: &[&str]) -> Value {
    let pid = pid.to_string();
    let mut args = vec!["threads", "--pid", &pid, "--format", "json"];
    args.extend_from_slice(extra);
    let out = gopeek().args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "gopeek {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("gopeek threads JSON")
}

fn reg(t: &Value, name: &str) -> u64 {
    t["registers"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("register {name} missing in {t}"))
}

/// `thread apply all info registers`: tid → register → value.
fn gdb_registers(pid: i32) -> HashMap<i32, HashMap<String, u64>> {
    let out = std::process::Command::new("gdb")
        .args(["-nx", "-batch", "-p", &pid.to_string()])
        .args(["-ex", "thread apply all info registers"])
        .output()
        .expect("gdb");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut all: HashMap<i32, HashMap<String, u64>> = HashMap::new();
    let mut cur = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Thread ") {
            // Thread 4 (LWP 27024 "stwstuck"):  or  (Thread 0x... (LWP N))
            cur = rest
                .split("LWP ")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|s| s.parse().ok());
            continue;
        }
        let mut w = line.split_whitespace();
        if let (Some(tid), Some(name), Some(hex)) = (cur, w.next(), w.next()) {
            if let Some(h) = hex.strip_prefix("0x") {
                if let Ok(v) = u64::from_str_radix(h, 16) {
                    all.entry(tid).or_default().insert(name.to_string(), v);
                }
            }
        }
    }
    all
}

/// Threads parked in runtime.futex (per gopeek's own symbolization) with
/// no timeout: a timed sleep (sysmon, the stop-the-world initiator's
/// 100 µs `notetsleep` loop) wakes and re-enters between gopeek's read and
/// gdb's, changing rax and the stack (seen: -ETIMEDOUT against -516).
fn futex_threads(j: &Value) -> Vec<&Value> {
    j["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            let timed = t["frames"].as_array().is_some_and(|f| {
                f.iter()
                    .any(|fr| fr["function"].as_str() == Some("runtime.notetsleep_internal"))
            });
            t["frames"][0]["function"].as_str() == Some("runtime.futex")
                && t["state"] == "S"
                && !timed
        })
        .collect()
}

#[test]
fn registers_match_gdb() {
    for (label, bin) in fixtures(&CELLS, "stwstuck") {
        let t = stuck(&bin);
        let mut last = String::new();
        let mut ok = false;
        // A futex sleep with a timeout (sysmon) may wake between the two
        // reads; three tries, each compared whole.
        for _ in 0..3 {
            let j = threads_json(t.pid, &[]);
            assert_running_untraced(t.pid);
            let g = gdb_registers(t.pid);
            wait_running_untraced(t.pid).expect("gdb left the target running");
            let parked = futex_threads(&j);
            assert!(
                !parked.is_empty(),
                "{label}: no thread in an untimed runtime.futex sleep:\n{j:#}"
            );
            let mut diffs = Vec::new();
            for th in &parked {
                let tid = th["tid"].as_i64().unwrap() as i32;
                let Some(gr) = g.get(&tid) else {
                    diffs.push(format!("gdb did not list thread {tid}"));
                    continue;
                };
                for r in REGS {
                    if gr.get(r) != Some(&reg(th, r)) {
                        diffs.push(format!(
                            "thread {tid} {r}: gopeek {:#x}, gdb {:?}",
                            reg(th, r),
                            gr.get(r)
                        ));
                    }
                }
            }
            if diffs.is_empty() {
                eprintln!(
                    "{label}: {} futex threads, {} registers each, equal to gdb",
                    parked.len(),
                    REGS.len()
                );
                ok = true;
                break;
            }
            last = diffs.join("\n");
        }
        assert!(ok, "{label}: registers differ from gdb's:\n{last}");
    }
}

/// objdump's instructions from `start` to `stop`: (address, mnemonic,
/// `<sym>` of a branch target).
fn objdump(bin: &Path, start: u64, stop: u64) -> Vec<(u64, String, Option<String>)> {
    let out = std::process::Command::new("objdump")
        .args([
            "-d",
            "--no-show-raw-insn",
            &format!("--start-address={start:#x}"),
            &format!("--stop-address={stop:#x}"),
        ])
        .arg(bin)
        .output()
        .expect("objdump");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((addr, insn)) = line.trim_start().split_once(":\t") else {
            continue;
        };
        let Ok(a) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        let insn = insn.trim();
        let mnem = insn.split_whitespace().next().unwrap_or("").to_string();
        let sym = insn
            .split_once('<')
            .filter(|_| !insn.contains('#'))
            .and_then(|(_, s)| s.split_once('>'))
            .map(|(s, _)| s.to_string());
        v.push((a, mnem, sym));
    }
    v
}

/// `name+0x23` (objdump) or `name+35` (gdb) as (name, offset).
fn sym_parts(s: &str) -> (String, u64) {
    // objdump names assembly functions by their ELF symbol, `NAME.abi0`.
    let s = &s.replace(".abi0", "");
    match s.rsplit_once('+') {
        Some((n, o)) => {
            let off = match o.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).unwrap_or(u64::MAX),
                None => o.parse().unwrap_or(u64::MAX),
            };
            (n.to_string(), off)
        }
        None => (s.to_string(), 0),
    }
}

#[test]
fn disasm_matches_objdump() {
    for (label, bin) in fixtures(&CELLS, "stwstuck") {
        let t = stuck(&bin);
        let j = threads_json(t.pid, &["--disasm", "64"]);
        assert_running_untraced(t.pid);
        let mut compared = 0;
        let mut named = 0;
        for th in j["threads"].as_array().unwrap() {
            let d = th["disasm"].as_array().unwrap();
            // Only code in the executable (not the vDSO).
            if d.is_empty() || d[0]["symbol"].is_null() {
                continue;
            }
            let pc = reg(th, "rip");
            assert_eq!(
                d[0]["address"].as_u64(),
                Some(pc),
                "{label}: disasm starts at rip"
            );
            assert_eq!(d.len(), 64, "{label}: {th:#}");
            let l = d.last().unwrap();
            let end =
                l["address"].as_u64().unwrap() + l["bytes"].as_str().unwrap().len() as u64 / 2;
            let want = objdump(&bin, pc, end);
            let got: Vec<(u64, String)> = d
                .iter()
                .map(|i| {
                    let text = i["text"].as_str().unwrap();
                    (
                        i["address"].as_u64().unwrap(),
                        text.split_whitespace().next().unwrap_or("").to_string(),
                    )
                })
                .collect();
            let want_am: Vec<(u64, String)> =
                want.iter().map(|(a, m, _)| (*a, m.clone())).collect();
            assert_eq!(got, want_am, "{label}: thread {} disassembly", th["tid"]);
            // Branch targets: the same function and offset as objdump's
            // (objdump names them only when .symtab survived).
            for (i, (_, _, sym)) in d.iter().zip(&want) {
                let text = i["text"].as_str().unwrap();
                if let (Some(theirs), Some((_, ours))) = (sym, text.split_once(" <")) {
                    let ours = ours.trim_end_matches('>');
                    assert_eq!(
                        sym_parts(ours),
                        sym_parts(theirs),
                        "{label}: branch target of {text:?}"
                    );
                    named += 1;
                }
            }
            compared += 1;
        }
        assert!(
            compared >= 2,
            "{label}: no thread's PC was in the executable:\n{j:#}"
        );
        // Past runtime.futex's end come other runtime functions with
        // branches; objdump names their targets where .symtab survived.
        if label.ends_with("default") {
            assert!(named > 0, "{label}: no branch target compared");
        }
        eprintln!("{label}: {compared} threads x 64 instructions equal to objdump, {named} branch targets named alike");
    }
}

/// The line range of `func` in a Go source file (from `func NAME(` to
/// the closing `}` at column 0).
fn func_lines(src: &str, func: &str) -> (i64, i64) {
    let lines: Vec<&str> = src.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(&format!("func {func}(")))
        .unwrap();
    let end = (start..lines.len()).find(|&i| lines[i] == "}").unwrap();
    (start as i64 + 1, end as i64 + 1)
}

#[test]
fn backtrace_names_the_spinner() {
    let src = std::fs::read_to_string(root().join("go-fixtures/stwstuck/main.go")).unwrap();
    let (lo, hi) = func_lines(&src, "spinNosplit");
    for (label, bin) in fixtures(&CELLS, "stwstuck") {
        let t = stuck(&bin);
        // Many holds: the spinner is caught in Go code, in the vDSO, in
        // nanotime1 and in the preemption signal's handler.
        let mut seen: HashMap<String, usize> = HashMap::new();
        for _ in 0..SAMPLES {
            let j = threads_json(t.pid, &[]);
            let threads = j["threads"].as_array().unwrap();
            let spinner: Vec<&Value> = threads
                .iter()
                .filter(|th| {
                    th["frames"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f["function"] == "main.spinNosplit")
                })
                .collect();
            assert_eq!(
                spinner.len(),
                1,
                "{label}: one thread runs the spinner:\n{j:#}"
            );
            let th = spinner[0];
            let f = th["frames"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["function"] == "main.spinNosplit")
                .unwrap();
            let line = f["line"].as_i64().unwrap();
            assert!(
                f["file"].as_str().unwrap().ends_with("stwstuck/main.go")
                    && (lo..=hi).contains(&line),
                "{label}: {f} not inside spinNosplit ({lo}..{hi})"
            );
            // It holds a P and runs a user goroutine (on its stack, on g0
            // inside nanotime's vDSO call, or on gsignal handling the
            // preemption signal it will refuse).
            assert!(
                th["m"].is_i64() && th["p"].is_i64() && th["goroutine"].is_u64(),
                "{th:#}"
            );
            assert!(
                ["user", "g0", "gsignal"].contains(&th["on"].as_str().unwrap()),
                "{th:#}"
            );
            // Every thread of /proc is listed once, with its comm.
            let mut tids: Vec<i64> = threads.iter().map(|t| t["tid"].as_i64().unwrap()).collect();
            tids.sort();
            let mut proc: Vec<i64> = std::fs::read_dir(format!("/proc/{}/task", t.pid))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
                .collect();
            proc.sort();
            assert_eq!(tids, proc, "{label}");
            let top = th["frames"][0]["function"]
                .as_str()
                .unwrap_or("")
                .to_string();
            *seen
                .entry(format!("on {} in {top}", th["on"].as_str().unwrap()))
                .or_default() += 1;
        }
        eprintln!("{label}: spinner named in {SAMPLES} holds: {seen:?}");
    }
}

/// Holds per cell in [`backtrace_names_the_spinner`].
const SAMPLES: usize = 25;

#[test]
fn json_schema_fields() {
    let Some(bin) = fixture("1.27", "stripped", "stwstuck") else {
        return;
    };
    let t = stuck(&bin);
    let tid = t.pid.to_string();
    let j = threads_json(t.pid, &["--tid", &tid, "--disasm", "3"]);
    assert_eq!(j["schema"], "gopeek.threads/1");
    assert_eq!(j["pid"].as_i64(), Some(t.pid as i64));
    let th = j["threads"].as_array().unwrap();
    assert_eq!(th.len(), 1, "--tid keeps one thread");
    let th = &th[0];
    for k in [
        "tid",
        "name",
        "state",
        "m",
        "p",
        "goroutine",
        "on",
        "registers",
        "frames",
        "disasm",
    ] {
        assert!(th.get(k).is_some(), "thread field {k} missing: {th:#}");
    }
    assert_eq!(th["name"], "stwstuck");
    assert_eq!(th["m"].as_i64(), Some(0), "the main thread is m0");
    for f in th["frames"].as_array().unwrap() {
        for k in ["function", "file", "line", "pc", "sp"] {
            assert!(f.get(k).is_some(), "frame field {k} missing: {f}");
        }
    }
    let d = th["disasm"].as_array().unwrap();
    assert_eq!(d.len(), 3);
    for i in d {
        for k in ["address", "bytes", "text", "symbol", "file", "line"] {
            assert!(i.get(k).is_some(), "disasm field {k} missing: {i}");
        }
    }
    // A thread that is not the target's: exit code 5, a message naming it.
    let out = gopeek()
        .args(["threads", "--pid", &tid, "--tid", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no thread 1"));
    assert_running_untraced(t.pid);
}

#[test]
fn threads_survives_sigkill() {
    let iters: u64 = std::env::var("GOPEEK_THREADS_FAULT_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    for (label, bin) in fixtures(&[("1.27", "default"), ("1.19", "stripped")], "busy") {
        let target = Launch::new(&bin).kill_with_test().start();
        let pid = target.pid.to_string();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut held_kills = 0;
        for i in 0..iters {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let delay = Duration::from_micros(1_000 + (seed >> 33) % 40_000);
            let mut child = gopeek()
                .args(["threads", "--pid", &pid, "--disasm", "64"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Kill it while it holds the target when possible.
            let t0 = Instant::now();
            while t0.elapsed() < delay && leader_tracer(target.pid) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
            if leader_tracer(target.pid) != 0 {
                held_kills += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
            if let Err(e) = wait_running_untraced(target.pid) {
                panic!(
                    "{label}: iteration {i}: target not running untraced: {e}\n{}",
                    describe_threads(target.pid)
                );
            }
        }
        eprintln!("{label}: {iters} kills, {held_kills} while the target was traced");
    }
}

/// `threads --core` on gdb's `gcore` of the stuck fixture: the futex
/// threads' registers and backtraces equal `threads --pid` read just
/// before (gdb wrote the core from the same stopped threads), the spinner
/// named; the target still runs afterwards.
#[test]
fn core_matches_live() {
    for (label, bin) in fixtures(&[("1.27", "stripped"), ("1.19", "default")], "stwstuck") {
        let t = stuck(&bin);
        // A futex sleep with a timeout (sysmon) may wake between the live
        // read and the core: three tries, each compared whole.
        let mut last = String::new();
        let mut ok = false;
        for _ in 0..3 {
            let live = threads_json(t.pid, &[]);
            let live_sched = sched_pm_lines(&["--pid", &t.pid.to_string(), "--consistent"]);
            let prefix = t.dir.path().join("core");
            let st = std::process::Command::new("gcore")
                .arg("-o")
                .arg(&prefix)
                .arg(t.pid.to_string())
                .output()
                .expect("gcore (gdb) is installed by scripts/setup");
            assert!(st.status.success(), "gcore failed: {st:?}");
            wait_running_untraced(t.pid).expect("gcore left the target running");
            let core = t.dir.path().join(format!("core.{}", t.pid));
            let out = gopeek()
                .arg("threads")
                .arg("--core")
                .arg(&core)
                .args(["--format", "json"])
                .output()
                .unwrap();
            let core_sched = sched_pm_lines(&["--core", core.to_str().unwrap()]);
            let _ = std::fs::remove_file(&core);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let dead: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(dead["pid"].as_i64(), Some(t.pid as i64));
            let funcs = |th: &Value| -> Vec<String> {
                th["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["function"].as_str().unwrap().to_string())
                    .collect()
            };
            let by_tid: HashMap<i64, &Value> = dead["threads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|th| (th["tid"].as_i64().unwrap(), th))
                .collect();
            let parked = futex_threads(&live);
            assert!(!parked.is_empty(), "{label}: {live:#}");
            let mut diffs = Vec::new();
            for th in &parked {
                let tid = th["tid"].as_i64().unwrap();
                let d = by_tid
                    .get(&tid)
                    .unwrap_or_else(|| panic!("{label}: thread {tid} not in the core"));
                for r in REGS {
                    if reg(d, r) != reg(th, r) {
                        diffs.push(format!(
                            "thread {tid} {r}: core {:#x}, live {:#x}",
                            reg(d, r),
                            reg(th, r)
                        ));
                    }
                }
                if funcs(d) != funcs(th) {
                    diffs.push(format!(
                        "thread {tid} backtrace: core {:?}, live {:?}",
                        funcs(d),
                        funcs(th)
                    ));
                }
                assert_eq!(
                    (&d["m"], &d["p"], &d["on"]),
                    (&th["m"], &th["p"], &th["on"])
                );
            }
            assert!(
                by_tid
                    .values()
                    .any(|th| funcs(th).iter().any(|f| f == "main.spinNosplit")),
                "{label}: the spinner is not named in the core:\n{dead:#}"
            );
            // `sched --core`: nothing schedules while the stop waits, so
            // the P and M lines are those of the live read.
            if core_sched != live_sched || core_sched.is_empty() {
                diffs.push(format!(
                    "sched --detail: core {core_sched:#?}, live {live_sched:#?}"
                ));
            }
            // `sched --core`: nothing schedules while the stop waits, so
            // the P and M lines are those of the live read.
            if core_sched != live_sched || core_sched.is_empty() {
                diffs.push(format!(
                    "sched --detail: core {core_sched:#?}, live {live_sched:#?}"
                ));
            }
            if diffs.is_empty() {
                eprintln!(
                    "{label}: {} futex threads equal in the core and live",
                    parked.len()
                );
                ok = true;
                break;
            }
            last = diffs.join("\n");
        }
        assert!(ok, "{label}: the core and the live read differ:\n{last}");
    }
}

/// The P and M lines of `gopeek sched --detail ARGS`.
fn sched_pm_lines(args: &[&str]) -> Vec<String> {
    let out = gopeek()
        .args(["sched", "--detail"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sched {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("  P") || l.starts_with("  M"))
        .map(str::to_string)
        .collect()
}
