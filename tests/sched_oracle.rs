//! `gopeek sched` against the target's own `schedtrace`.
//!
//! The `stwstuck` fixture holds a stop-the-world stuck (a goroutine that
//! cannot be preempted while another calls runtime.GC or ReadMemStats)
//! and runs with `GODEBUG=schedtrace=250,scheddetail=1`, so it prints its
//! own scheduler every 250 ms. While the stop waits nothing schedules:
//! gopeek's `sched --detail` must equal the runtime's last stuck block
//! line for line, except the `SCHED <N>ms` figure, the `locks=` of the M
//! printing the trace (sysmon, the M with neither P nor goroutine) and the
//! `blocked=` of the initiator's M (it sleeps in 100 µs slices, each
//! flipping the flag; `../shared/go-runtime/sched.md` §1.3). The stop-the-
//! world section must name the initiator, the reason and the goroutine it
//! waits for. A control (preemptible spinner) and a long cgo call must not
//! be reported as a pending stop.
//!
//! Risk is per Go version (the text changed in 1.21, 1.23 and 1.25; the
//! layouts every release) and per build mode for the stripped-binary
//! route to the globals, so the main case runs for every version, default
//! and stripped. The other initiators and modes run on the versions whose
//! behaviour differs (1.19: no stwReason; 1.21-1.24: a GC initiator stays
//! running; 1.25+: "stopping the world"). Each run spins one CPU for 2 s.

mod common;

use common::*;
use std::sync::mpsc;
use std::time::Duration;

/// One run of the fixture, with what gopeek said while it was stuck.
struct Run {
    gopeek: String,
    gopeek_json: Option<serde_json::Value>,
    stderr: String,
    stdout: Vec<String>,
}

/// Starts stwstuck with `args`, waits for `calling`, sleeps `after`, runs
/// `gopeek sched` with `sched_args`, then waits for the fixture to finish.
fn run(
    bin: &std::path::Path,
    args: &[&str],
    godebug: &str,
    sched_args: &[&str],
    after_line: &str,
) -> Run {
    let (tx, rx) = mpsc::channel::<String>();
    let target = Launch::new(bin)
        .args(args)
        .envs(&[("GODEBUG", godebug)])
        .on_line(move |l| {
            let _ = tx.send(l.to_string());
        })
        .kill_with_test()
        .start();
    let mut stdout = Vec::new();
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no {after_line:?} line; stderr:\n{}", target.stderr()));
        stdout.push(l.clone());
        if l.starts_with(after_line) {
            break;
        }
    }
    // Well inside the stall (the fixture spins 2 s).
    std::thread::sleep(Duration::from_millis(500));
    let pid = target.pid.to_string();
    let mut cmd = gopeek();
    cmd.args(["sched", "--pid", &pid]).args(sched_args);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "gopeek sched failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // One reading: the blocker's stack is read under a brief hold of its
    // thread, through nanotime1's frame pointer and the preemption
    // signal's frame where it is caught there (no retry).
    let read_json = || -> Option<serde_json::Value> {
        gopeek()
            .args(["sched", "--pid", &pid, "--format", "json"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice(&o.stdout).ok())
    };
    let json = read_json();
    assert_running_untraced(target.pid);
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(30)) {
        let done = l == "done";
        stdout.push(l);
        if done {
            break;
        }
    }
    Run {
        gopeek: text,
        gopeek_json: json,
        stderr: target.stderr(),
        stdout,
    }
}

/// The schedtrace blocks of a stderr text (each from a `SCHED` line to the
/// next), complete ones only (the last is followed by another SCHED line or
/// by the end of a process that exited normally).
fn blocks(text: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for l in text.lines() {
        if l.starts_with("SCHED ") {
            out.push(vec![l.to_string()]);
        } else if l.starts_with("  ") {
            if let Some(b) = out.last_mut() {
                b.push(l.to_string());
            }
        }
    }
    out
}

/// Masks what legitimately differs (module doc).
fn normalize(block: &[String]) -> Vec<String> {
    // The initiator's M: the M holding the P that is _Pgcstop (status=3).
    let stopped_p: Vec<String> = block
        .iter()
        .filter(|l| l.starts_with("  P") && l.contains(": status=3 "))
        .filter_map(|l| l.trim().split(':').next().map(|p| p[1..].to_string()))
        .collect();
    block
        .iter()
        .map(|l| {
            let mut l = l.clone();
            if l.starts_with("SCHED ") {
                let rest = l.split_once("ms:").map(|x| x.1).unwrap_or("").to_string();
                l = format!("SCHED Nms:{rest}");
            }
            if l.starts_with("  M") {
                let idle = (l.contains(" p=nil ") || l.contains(" p=-1 "))
                    && (l.contains(" curg=nil ") || l.contains(" curg=-1 "));
                if idle {
                    l = mask(&l, "locks=");
                }
                if stopped_p.iter().any(|p| l.contains(&format!(" p={p} "))) {
                    l = mask(&l, "blocked=");
                }
            }
            l
        })
        .collect()
}

fn mask(l: &str, key: &str) -> String {
    match l.find(key) {
        Some(i) => {
            let start = i + key.len();
            let end = l[start..].find(' ').map(|e| start + e).unwrap_or(l.len());
            format!("{}*{}", &l[..start], &l[end..])
        }
        None => l.to_string(),
    }
}

fn is_stuck(b: &[String]) -> bool {
    (b[0].contains("gcwaiting=true") || b[0].contains("gcwaiting=1 "))
        && !b[0].contains("stopwait=0 ")
}

/// gopeek's trace part (from its SCHED line on) equals the target's last
/// stuck block.
fn assert_same_trace(what: &str, r: &Run) {
    let mine: Vec<String> = r
        .gopeek
        .lines()
        .skip_while(|l| !l.starts_with("SCHED "))
        .map(str::to_string)
        .collect();
    assert!(
        !mine.is_empty(),
        "{what}: gopeek printed no SCHED line:\n{}",
        r.gopeek
    );
    let theirs = blocks(&r.stderr);
    let last = theirs
        .iter()
        .rev()
        .find(|b| is_stuck(b))
        .unwrap_or_else(|| {
            panic!(
                "{what}: the target never printed a stuck block:\n{}",
                r.stderr
            )
        });
    let (a, b) = (normalize(last), normalize(&mine));
    if a != b {
        let mut msg = format!("{what}: gopeek's view differs from the target's own schedtrace\n");
        for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            if x != y {
                msg.push_str(&format!("line {i}:\n  target: {x}\n  gopeek: {y}\n"));
            }
        }
        if a.len() != b.len() {
            msg.push_str(&format!(
                "target has {} lines, gopeek {}\n",
                a.len(),
                b.len()
            ));
        }
        msg.push_str(&format!(
            "--- gopeek\n{}\n--- target block\n{}",
            r.gopeek,
            last.join("\n")
        ));
        panic!("{msg}");
    }
}

/// The goroutine id of the spinner: the G line `status=2` whose M holds a
/// running P (status=1) in gopeek's own block.
fn spinner(r: &Run) -> String {
    let lines: Vec<&str> = r.gopeek.lines().collect();
    let running_m: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("  P") && l.contains(": status=1 "))
        .filter_map(|l| l.split(" m=").nth(1)?.split(' ').next().map(str::to_string))
        .collect();
    lines
        .iter()
        .filter(|l| l.starts_with("  G") && l.contains(": status=2("))
        .find(|l| running_m.iter().any(|m| l.contains(&format!(") m={m} "))))
        .and_then(|l| {
            l.trim()
                .strip_prefix('G')?
                .split(':')
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no running goroutine on a running P in:\n{}", r.gopeek))
}

/// 1-based line of the first line containing `needle` after the first
/// line containing `after`, in the fixture's main.go.
fn fixture_line(after: &str, needle: &str) -> i64 {
    let src = std::fs::read_to_string(root().join("go-fixtures/stwstuck/main.go")).unwrap();
    let lines: Vec<&str> = src.lines().collect();
    let from = lines.iter().position(|l| l.contains(after)).unwrap();
    (from
        + lines[from..]
            .iter()
            .position(|l| l.contains(needle))
            .unwrap()
        + 1) as i64
}

/// `frames` (JSON) has `function` at main.go:`line`.
fn has_frame(frames: &serde_json::Value, function: &str, line: i64) -> bool {
    frames.as_array().is_some_and(|fs| {
        fs.iter().any(|f| {
            f["function"] == function
                && f["line"] == line
                && f["file"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("stwstuck/main.go"))
        })
    })
}

/// The spinner's function and the initiator's call, by name and line, in
/// the stacks unwound from their threads.
fn assert_stacks(what: &str, r: &Run, spin_fn: &str, initiator_call: &str, runtime_fn: &str) {
    let j = r.gopeek_json.as_ref().unwrap();
    let spin_line = fixture_line(
        &format!("func {}(", spin_fn.trim_start_matches("main.")),
        "for nanotime() < deadline",
    );
    let frames = &j["stw"]["waiting_for"][0]["frames"];
    assert!(
        has_frame(frames, spin_fn, spin_line),
        "{what}: the blocker's stack lacks {spin_fn} at main.go:{spin_line}: {frames}"
    );
    let call_line = fixture_line("func main()", initiator_call);
    let frames = &j["stw"]["initiator"]["frames"];
    assert!(
        has_frame(frames, "main.main", call_line),
        "{what}: the initiator's stack lacks main.main at main.go:{call_line}: {frames}"
    );
    assert!(
        frames
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["function"] == runtime_fn),
        "{what}: the initiator's stack lacks {runtime_fn}: {frames}"
    );
    assert!(
        r.gopeek.contains(&format!("      {spin_fn}")),
        "{what}: text lacks {spin_fn}:\n{}",
        r.gopeek
    );
}

fn assert_stw_named(what: &str, r: &Run, reason: &str) {
    let out = &r.gopeek;
    assert!(
        out.starts_with("STOP-THE-WORLD PENDING"),
        "{what}: no pending stop-the-world reported first:\n{out}"
    );
    assert!(
        out.contains(&format!("  reason: {reason}")),
        "{what}: reason {reason:?} missing:\n{out}"
    );
    // The initiator is main (goroutine 1).
    assert!(
        out.lines()
            .any(|l| l.starts_with("  started by: P") && l.ends_with(", goroutine 1")),
        "{what}: initiator (goroutine 1) not named:\n{out}"
    );
    let g = spinner(r);
    // ", running for N ms" follows when sysmon has sampled the P's current
    // schedtick (its only record of when the goroutine started running);
    // right after the stop began it may not have yet.
    assert!(
        out.lines().any(|l| l.starts_with("  waiting for: P")
            && (l.contains(&format!(", goroutine {g}, running for "))
                || l.ends_with(&format!(", goroutine {g}")))),
        "{what}: the spinner (goroutine {g}) is not named as the one it waits for:\n{out}"
    );
    let j = r
        .gopeek_json
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no JSON"));
    assert_eq!(j["schema"], "gopeek.sched/1");
    assert_eq!(j["stw"]["pending"], true, "{what}: JSON stw.pending");
    assert_eq!(
        j["stw"]["waiting_for"][0]["goroutine"].to_string(),
        g,
        "{what}: JSON waiting_for"
    );
    assert_eq!(
        j["stw"]["initiator"]["goroutine"], 1,
        "{what}: JSON initiator"
    );
}

const TRACE: &str = "schedtrace=250,scheddetail=1";

/// A GC stop held by a nosplit spinner, GOMAXPROCS=2: every version, default
/// and stripped.
fn check(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "stwstuck") else {
        return;
    };
    let what = format!("go{version}/{mode} nosplit gc");
    let r = run(
        &bin,
        &["-mode=nosplit", "-stw=gc", "-hold=2s"],
        TRACE,
        &["--detail"],
        "calling",
    );
    assert_same_trace(&what, &r);
    assert_stw_named(&what, &r, "GC sweep termination (inferred: no reason recorded, gcsema held, a GC started and not ended)");
    assert!(
        r.gopeek
            .contains("async preemption signals are sent and refused"),
        "{what}:\n{}",
        r.gopeek
    );
}

/// One test per Go version, default and stripped.
macro_rules! versions {
    ($($name:ident => $v:literal),*) => {
        $(
            mod $name {
                #[test] fn default() { super::check($v, "default") }
                #[test] fn stripped() { super::check($v, "stripped") }
            }
        )*
    };
}
versions!(go1_19 => "1.19", go1_21 => "1.21", go1_22 => "1.22", go1_23 => "1.23",
          go1_24 => "1.24", go1_25 => "1.25", go1_26 => "1.26", go1_27 => "1.27");

#[test]
fn plain_loop_with_asyncpreemptoff() {
    for v in ["1.19", "1.27"] {
        let Some(bin) = fixture(v, "default", "stwstuck") else {
            continue;
        };
        let what = format!("go{v} plain asyncpreemptoff");
        let r = run(
            &bin,
            &["-mode=plain", "-stw=gc", "-hold=2s"],
            &format!("{TRACE},asyncpreemptoff=1"),
            &["--detail"],
            "calling",
        );
        assert_same_trace(&what, &r);
        assert_stw_named(&what, &r, "GC sweep termination (inferred: no reason recorded, gcsema held, a GC started and not ended)");
        assert!(
            r.gopeek
                .contains("async preemption is off (GODEBUG=asyncpreemptoff=1)"),
            "{what}:\n{}",
            r.gopeek
        );
    }
}

#[test]
fn read_mem_stats_as_initiator() {
    for v in ["1.19", "1.21", "1.25"] {
        let Some(bin) = fixture(v, "stripped", "stwstuck") else {
            continue;
        };
        let what = format!("go{v}/stripped memstats");
        let r = run(
            &bin,
            &["-mode=nosplit", "-stw=memstats", "-hold=2s"],
            TRACE,
            &["--detail", "--consistent"],
            "calling",
        );
        assert_same_trace(&what, &r);
        assert_stw_named(&what, &r, "read mem stats");
        assert_stacks(
            &what,
            &r,
            "main.spinNosplit",
            "runtime.ReadMemStats(&ms)",
            "runtime.ReadMemStats",
        );
    }
}

#[test]
fn four_procs() {
    for v in ["1.21", "1.26"] {
        let Some(bin) = fixture(v, "default", "stwstuck") else {
            continue;
        };
        let what = format!("go{v} GOMAXPROCS=4");
        let r = run(
            &bin,
            &["-mode=nosplit", "-stw=gc", "-procs=4", "-hold=2s"],
            TRACE,
            &["--detail"],
            "calling",
        );
        assert_same_trace(&what, &r);
        assert!(r.gopeek.contains("gomaxprocs=4 "), "{what}:\n{}", r.gopeek);
        assert_stw_named(&what, &r, "GC sweep termination (inferred: no reason recorded, gcsema held, a GC started and not ended)");
    }
}

/// The preemptible control: the stop succeeds at once; after it, gopeek
/// must not report one.
#[test]
fn control_is_not_reported_stuck() {
    let Some(bin) = fixture("1.27", "default", "stwstuck") else {
        return;
    };
    let r = run(
        &bin,
        &["-mode=none", "-stw=gc", "-hold=2s"],
        "",
        &[],
        "returned",
    );
    assert!(r.stdout.iter().any(|l| l.starts_with("returned")));
    assert!(
        r.gopeek.starts_with("no stop-the-world pending"),
        "control reported as stuck:\n{}",
        r.gopeek
    );
    // The short form: SCHED line with the [ a b ] schedticks list.
    let sched = r.gopeek.lines().find(|l| l.starts_with("SCHED ")).unwrap();
    assert!(sched.contains(" schedticks=[ "), "{sched}");
}

/// A goroutine 2 s in a C call while runtime.GC runs: the GC does not wait
/// for it, and gopeek says so instead of blaming it.
#[test]
fn long_cgo_call_is_not_blamed() {
    let Some(bin) = fixture("1.27", "cgo", "stwstuck") else {
        return;
    };
    let r = run(
        &bin,
        &["-mode=cgo", "-stw=gc", "-hold=2s"],
        "",
        &["--detail"],
        "returned",
    );
    let out = &r.gopeek;
    assert!(
        out.starts_with("no stop-the-world pending"),
        "cgo call reported as a stop:\n{out}"
    );
    assert!(out.contains("  not blamed: goroutine(s) "), "{out}");
    assert!(
        !out.contains("CPU hog"),
        "the goroutine in C was called a hog:\n{out}"
    );
    // Its G line says _Gsyscall.
    assert!(
        out.lines()
            .any(|l| l.starts_with("  G") && l.contains(": status=3(")),
        "{out}"
    );
}

/// `gopeek sched --core`: the same nosplit GC stop, crashed with
/// GOTRACEBACK=crash and SIGQUIT while it is stuck, read from the kernel
/// core. The runtime prints one last schedtrace block as it starts to
/// crash (`startpanic_m`, schedtrace on), before it writes the core:
/// gopeek's view of the core must equal that block, masked as above, plus
/// `throwing=` on every M (the crash sets it on each M it signals, after
/// the block is printed) and `locks=` of the crashing M (`dying=1`: it
/// printed the block holding `sched.lock`, as sysmon does above). GODEBUG=dontfreezetheworld=1 (Go 1.21+) keeps
/// the crash from rewriting `stopwait`; 1.19 has no such switch, so the
/// oldest cell is 1.21. The stop-the-world analysis, from the threads'
/// registers in the core, must name the initiator, the reason and the
/// spinner, with their frames.
fn check_core(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "stwstuck") else {
        return;
    };
    let what = format!("go{version}/{mode} nosplit gc, core");
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    assert!(
        !pattern.starts_with('|') && !pattern.contains('/'),
        "kernel.core_pattern is {pattern:?}: run `sysctl -w kernel.core_pattern=core` (as root)"
    );
    // A blocker whose thread the crash signal caught in the vDSO (the
    // spinner calls nanotime) has no unwindable stack past the signal
    // frame, as in the live test above: the crash is then taken again.
    let crash_once = || -> Run {
        let godebug = format!("{TRACE},dontfreezetheworld=1");
        let (tx, rx) = mpsc::channel::<String>();
        let mut target = Launch::new(&bin)
            .args(&["-mode=nosplit", "-stw=gc", "-hold=4s"])
            .envs(&[("GODEBUG", godebug.as_str()), ("GOTRACEBACK", "crash")])
            .on_line(move |l| {
                let _ = tx.send(l.to_string());
            })
            .core_dumps()
            .kill_with_test()
            .start();
        let mut stdout = Vec::new();
        loop {
            let l = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no `calling` line; stderr:\n{}", target.stderr()));
            stdout.push(l.clone());
            if l.starts_with("calling") {
                break;
            }
        }
        // Well inside the stall (the fixture spins 4 s).
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(target.pid, libc::SIGQUIT) };
        let status = target.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert!(status.core_dumped(), "{what}: no core: {status:?}");
        let dir = target.dir.path();
        let core = [dir.join("core"), dir.join(format!("core.{}", target.pid))]
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{what}: no core in {}", dir.display()));
        let sched = |extra: &[&str]| {
            let out = gopeek()
                .args(["sched", "--core"])
                .arg(&core)
                .args(extra)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{what}: gopeek sched --core failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let throwing = |text: &str| -> String {
            text.lines()
                .map(|l| {
                    if l.starts_with("  M") && l.contains(" dying=1 ") {
                        mask(&mask(l, "throwing="), "locks=")
                    } else if l.starts_with("  M") {
                        mask(l, "throwing=")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let stderr = target.stderr();
        let before_crash = stderr.split("\nSIGQUIT: quit").next().unwrap_or("");
        Run {
            gopeek: throwing(&sched(&["--detail"])),
            gopeek_json: serde_json::from_str(&sched(&["--format", "json"])).ok(),
            stderr: throwing(before_crash),
            stdout,
        }
    };
    let cut = |r: &Run| {
        r.gopeek_json.as_ref().is_some_and(|j| {
            !j["stw"]["waiting_for"][0]["frames"]
                .as_array()
                .is_some_and(|fs| fs.iter().any(|f| f["function"] == "main.spinNosplit"))
        })
    };
    let mut r = crash_once();
    for _ in 0..5 {
        if !cut(&r) {
            break;
        }
        r = crash_once();
    }
    let stderr = r.stderr.clone();
    assert!(
        blocks(&r.stderr).last().is_some_and(|b| is_stuck(b)),
        "{what}: the block printed at the crash is not stuck:\n{stderr}"
    );
    assert_same_trace(&what, &r);
    assert_stw_named(&what, &r, "GC sweep termination (inferred: no reason recorded, gcsema held, a GC started and not ended)");
    assert_stacks(
        &what,
        &r,
        "main.spinNosplit",
        "runtime.GC()",
        "runtime.gcStart",
    );
}

// The core cells: 1.21 (the oldest with dontfreezetheworld), 1.27 default
// and stripped (the newest; the stripped route to the globals).
#[test]
fn core_go1_21() {
    check_core("1.21", "default");
}

#[test]
fn core_go1_27() {
    check_core("1.27", "default");
}

#[test]
fn core_go1_27_stripped() {
    check_core("1.27", "stripped");
}
