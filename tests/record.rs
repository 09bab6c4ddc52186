//! `gopeek record` against the oracle: the `cpuburn` fixture burns CPU in
//! four functions under four pprof labels (one hot loop inlined, one
//! syscall-heavy) and writes its own runtime/pprof CPU profile of an
//! interval inside gopeek's recording. The two profiles must agree:
//!
//! * total-variation distance of flat per-function shares <= 0.06, and
//!   every function with >= 5% of Go's samples within ±3 points;
//! * per-label shares (`work=a..d`, and `e` in C through cgo in the cgo
//!   build) within ±3 points;
//! * at least 99% of gopeek's samples in `main.burnX` carry a goroutine id
//!   that the fixture says runs `burnX`;
//! * the dominant caller chain of each of Go's functions with >= 5% flat
//!   is the same.
//!
//! Go's profile is normalised in one way: `runtime.asyncPreempt` frames
//! are removed (the sample goes to the function it interrupted). On a
//! loaded machine Go's SIGPROF is often delivered right after the SIGURG
//! of an async preemption (lower signal numbers first), so Go books the
//! tick to the injected `asyncPreempt` call instead of the code it
//! interrupted; gopeek's kernel samples do not have that artifact.
//!
//! gopeek's samples of what Go's profiler cannot see (sysmon's thread, Go's
//! own SIGPROF handler) are left out of the comparison.
//!
//! Sampling noise: both sides sample at 250 Hz (Go's per-thread CPU
//! timers fire at most once per kernel tick, so a higher rate only loses
//! Go samples) with GOMAXPROCS=1. The fixture profiles itself in 4 s
//! chunks until Go's profiles hold 3000 samples (12 s on an idle machine,
//! longer on a loaded one, at most 90 s), which puts the ±3-point checks at
//! about 3 standard deviations of the difference.
//!
//! The ptrace backend is held to the same figures (Go 1.27 default).
//!
//! Matrix: Go 1.19 and 1.27 (the oldest and newest runtime: g register
//! use, label representation and name printing differ) in default,
//! stripped (no symbols: globals found by disassembly) and pie (load
//! bias) modes; on 1.27 also cgo (C time booked to the cgo call),
//! trimpath (the pclntab's file table rewritten) and noinline (no inlined
//! frames: main.mixB a function of its own, the callers' chains one level
//! deeper, which the comparison of caller chains sees); and every runtime
//! between, 1.21-1.26, in the default build (the g register, `m.curg`,
//! the label set and the inlining tables per release).
//! These seventeen cells are what CI runs (each costs a fixture build
//! and 15-90 s of recording); every other version × mode is the same
//! code path as dump's matrix: set GOPEEK_RECORD_MATRIX=1 to run all of
//! it (cells whose fixture is not built are skipped with a note).

mod common;
#[path = "record/pprof.rs"]
mod pprof;

use common::*;
use pprof::{decode, Profile};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const RATE: &str = "250";

/// Shares of `key` over the samples of `p` (weights: sample counts).
fn shares(p: &Profile, key: impl Fn(&pprof::Sample) -> Option<String>) -> BTreeMap<String, f64> {
    let mut m: BTreeMap<String, f64> = BTreeMap::new();
    let mut total = 0.0;
    for s in &p.samples {
        let n = s.values[0] as f64;
        total += n;
        if let Some(k) = key(s) {
            *m.entry(k).or_default() += n;
        }
    }
    for v in m.values_mut() {
        *v /= total.max(1.0);
    }
    m
}

/// Go's stacks without `runtime.asyncPreempt` (see the module doc).
fn normalise(p: &mut Profile) {
    for s in &mut p.samples {
        s.frames.retain(|(f, _)| f != "runtime.asyncPreempt");
    }
}

/// gopeek's samples of what Go's profiler cannot see: the sysmon thread
/// (it never runs a goroutine, so it never gets a per-thread profiling
/// timer) and Go's own SIGPROF handler (the signal is blocked while it
/// runs). Both are real CPU time of the fixture, left out of the
/// comparison only.
fn without_go_blind_spots(p: &Profile) -> Profile {
    let mut p = p.clone();
    p.samples.retain(|s| {
        !s.frames.iter().any(|(f, _)| {
            f == "runtime.sysmon" || f == "runtime.sigtramp" || f == "runtime.sigtrampgo"
        })
    });
    p
}

fn leaf(s: &pprof::Sample) -> Option<String> {
    Some(s.frames.first().map_or("(empty)".into(), |f| f.0.clone()))
}

fn label(s: &pprof::Sample) -> Option<String> {
    Some(
        s.str_labels
            .iter()
            .find(|(k, _)| k == "work")
            .map_or("(none)".into(), |(_, v)| v.clone()),
    )
}

/// The most frequent caller chain (leaf to root) of samples whose leaf is
/// `f`.
fn dominant_chain(p: &Profile, f: &str) -> Vec<String> {
    let mut m: HashMap<Vec<String>, i64> = HashMap::new();
    for s in &p.samples {
        if s.frames.first().is_some_and(|l| l.0 == f) {
            let chain = s.frames.iter().map(|x| x.0.clone()).collect();
            *m.entry(chain).or_default() += s.values[0];
        }
    }
    m.into_iter()
        .max_by_key(|(c, n)| (*n, c.clone()))
        .map(|(c, _)| c)
        .unwrap_or_default()
}

struct Recorded {
    go: Profile,
    gopeek: Profile,
    gopeek_raw: Vec<u8>,
    workers: HashMap<String, Vec<i64>>,
    stderr: String,
}

/// Go samples wanted before comparing: enough for the ±3-point checks to
/// sit at about 3 standard deviations of the difference.
const GO_SAMPLES: i64 = 3000;
/// Longest the test keeps collecting (a loaded machine gives fewer
/// samples per second; the comparison then says how many it had).
const MAX_COLLECT: Duration = Duration::from_secs(90);

/// Starts cpuburn and records it with gopeek, and inside the recording has
/// it profile itself in 4 s chunks until Go's profiles hold GO_SAMPLES;
/// then ends the recording with SIGINT (gopeek's Ctrl-C path, which must
/// still write the profile).
fn record_oracle(bin: &Path, extra: &[&str]) -> Recorded {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l2 = lines.clone();
    let launch = Launch::new(bin);
    let go_path = launch.dir().join("go.pprof");
    let run = launch
        .envs(&[
            ("GOMAXPROCS", "1"),
            ("CPUBURN_PROFILE", go_path.to_str().unwrap()),
            ("CPUBURN_SECONDS", "4"),
            ("CPUBURN_HZ", RATE),
        ])
        .on_line(move |l| l2.lock().unwrap().push(l.to_string()))
        .kill_with_test()
        .start();
    let out = run.dir.path().join("gopeek.pprof");
    let child = gopeek()
        .args(["record", "--pid", &run.pid.to_string(), "--duration", "10m"])
        .args(["--rate", RATE])
        .args(extra)
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let t0 = std::time::Instant::now();
    let mut go = Profile::default();
    let mut chunk = 0;
    while go.samples.iter().map(|s| s.values[0]).sum::<i64>() < GO_SAMPLES
        && t0.elapsed() < MAX_COLLECT
    {
        chunk += 1;
        request_go_profile(&run, &lines, chunk);
        let p = decode(&std::fs::read(format!("{}.{chunk}", go_path.display())).unwrap());
        go.sample_types = p.sample_types;
        go.samples.extend(p.samples);
    }
    kill(child.id() as i32, libc::SIGINT).unwrap();
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    assert!(done.status.success(), "gopeek record failed: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_running_untraced(run.pid);
    let workers_line = lines
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| l.strip_prefix("workers ").map(str::to_string))
        .unwrap();
    let workers: HashMap<String, Vec<i64>> = serde_json::from_str(&workers_line).unwrap();
    let gopeek_raw = std::fs::read(&out).unwrap();
    Recorded {
        go,
        gopeek: decode(&gopeek_raw),
        gopeek_raw,
        workers,
        stderr,
    }
}

/// Every comparison of the module doc; panics with both profiles'
/// figures on the first disagreement.
fn compare(r: &Recorded) {
    let mut go = r.go.clone();
    normalise(&mut go);
    let gp = &without_go_blind_spots(&r.gopeek);
    let n = |p: &Profile| p.samples.iter().map(|s| s.values[0]).sum::<i64>();
    let (go_flat, gp_flat) = (shares(&go, leaf), shares(gp, leaf));
    let report = format!(
        "Go: {} samples, gopeek: {} samples\nGo flat: {go_flat:.3?}\ngopeek flat: {gp_flat:.3?}\ngopeek stderr: {}",
        n(&go),
        n(gp),
        r.stderr
    );
    assert!(
        n(&go) >= 200,
        "too few samples in Go's profile to compare\n{report}"
    );
    let keys: std::collections::BTreeSet<&String> = go_flat.keys().chain(gp_flat.keys()).collect();
    let tv: f64 = keys
        .iter()
        .map(|k| (go_flat.get(*k).unwrap_or(&0.0) - gp_flat.get(*k).unwrap_or(&0.0)).abs())
        .sum::<f64>()
        / 2.0;
    assert!(
        tv <= 0.06,
        "total variation distance {tv:.3} > 0.06\n{report}"
    );
    for (f, &share) in go_flat.iter().filter(|(_, &s)| s >= 0.05) {
        let mine = gp_flat.get(f).copied().unwrap_or(0.0);
        assert!(
            (share - mine).abs() <= 0.03,
            "{f}: Go {share:.3}, gopeek {mine:.3}\n{report}"
        );
        assert_eq!(
            dominant_chain(&go, f),
            dominant_chain(gp, f),
            "dominant caller chain of {f}\n{report}"
        );
    }
    let (go_l, gp_l) = (shares(&go, label), shares(gp, label));
    let mut ks: Vec<&String> = r.workers.keys().collect();
    ks.sort();
    for k in ks {
        let (a, b) = (
            go_l.get(k).copied().unwrap_or(0.0),
            gp_l.get(k).copied().unwrap_or(0.0),
        );
        assert!(a > 0.02, "label work={k} missing in Go's profile: {go_l:?}");
        assert!(
            (a - b).abs() <= 0.03,
            "label work={k}: Go {a:.3}, gopeek {b:.3}\nGo: {go_l:.3?}\ngopeek: {gp_l:.3?}"
        );
    }
    // Goroutine attribution: samples in main.burnX carry a goroutine of X.
    let (mut right, mut total) = (0i64, 0i64);
    for s in &gp.samples {
        for (k, ids) in &r.workers {
            let f = format!("main.burn{}", k.to_uppercase());
            if s.frames.iter().any(|(n, _)| *n == f) {
                total += s.values[0];
                let goid = s
                    .num_labels
                    .iter()
                    .find(|(k, _)| k == "goroutine")
                    .map(|x| x.1);
                if goid.is_some_and(|g| ids.contains(&g)) {
                    right += s.values[0];
                }
            }
        }
    }
    assert!(total > 0);
    assert!(
        right as f64 >= 0.99 * total as f64,
        "goroutine attribution: {right} of {total} samples right"
    );
    eprintln!(
        "agreement: tv {tv:.3}; goroutines {right}/{total}; labels Go {go_l:.3?} gopeek {gp_l:.3?}\n{report}"
    );
}

/// What Go's own CPU profile has and gopeek's must have too.
fn check_format(p: &Profile, inlined: bool) {
    assert_eq!(
        p.sample_types,
        [
            ("samples".to_string(), "count".to_string()),
            ("cpu".to_string(), "nanoseconds".to_string())
        ]
    );
    assert_eq!(
        p.period_type,
        ("cpu".to_string(), "nanoseconds".to_string())
    );
    assert_eq!(p.period, 1_000_000_000 / RATE.parse::<i64>().unwrap());
    for s in &p.samples {
        assert_eq!(s.values.len(), 2);
        assert_eq!(s.values[1], s.values[0] * p.period);
    }
    // The inlined hot loop: main.mixB inside main.burnB's location.
    assert!(
        !inlined
            || p.samples.iter().any(|s| s.per_location[0] >= 2
                && s.frames[0].0 == "main.mixB"
                && s.frames[1].0 == "main.burnB"),
        "no location with main.mixB inlined into main.burnB"
    );
}

fn check(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "cpuburn") else {
        return;
    };
    let r = record_oracle(&bin, &[]);
    check_format(&r.gopeek, mode != "noinline");
    compare(&r);
    if (version, mode) == ("1.27", "default") {
        opened_by_every_go_tool_pprof(&r.gopeek_raw);
    }
}

/// `go tool pprof -top` of every installed toolchain reads the profile,
/// with the goroutine's labels as tags.
fn opened_by_every_go_tool_pprof(raw: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cpu.pprof");
    std::fs::write(&path, raw).unwrap();
    for go in installed_go() {
        let out = Command::new(&go)
            .args(["tool", "pprof", "-top", "-tagfocus=work=a"])
            .arg(&path)
            .env("GOTOOLCHAIN", "local")
            .env("PPROF_TMPDIR", dir.path())
            .env("HOME", dir.path())
            .env("GOCACHE", gocache(&go))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} tool pprof: {}",
            go.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("main.burnA"), "{}:\n{stdout}", go.display());
        assert!(
            !stdout.contains("main.burnB"),
            "-tagfocus=work=a kept burnB:\n{stdout}"
        );
    }
}

#[test]
fn oracle_go1_27_default() {
    check("1.27", "default")
}
#[test]
fn oracle_go1_27_stripped() {
    check("1.27", "stripped")
}
#[test]
fn oracle_go1_27_pie() {
    check("1.27", "pie")
}
#[test]
fn oracle_go1_27_trimpath() {
    check("1.27", "trimpath")
}
#[test]
fn oracle_go1_27_noinline() {
    check("1.27", "noinline")
}
#[test]
fn oracle_go1_19_default() {
    check("1.19", "default")
}
#[test]
fn oracle_go1_19_stripped() {
    check("1.19", "stripped")
}
#[test]
fn oracle_go1_19_pie() {
    check("1.19", "pie")
}

/// Every runtime between the oldest and the newest, default build.
macro_rules! default_cells {
    ($($name:ident => $v:literal),*) => {
        $(
            #[test]
            fn $name() {
                check($v, "default")
            }
        )*
    };
}
default_cells!(oracle_go1_21_default => "1.21", oracle_go1_22_default => "1.22",
               oracle_go1_23_default => "1.23", oracle_go1_24_default => "1.24",
               oracle_go1_25_default => "1.25", oracle_go1_26_default => "1.26");

/// A cgo build: the fifth worker (work=e) spends its time in C, which Go
/// books to the Go stack of the cgo call (runtime.cgocall under
/// main._Cfunc_burn_e under main.burnE); gopeek must too.
#[test]
fn oracle_go1_27_cgo() {
    let Some(bin) = fixture("1.27", "cgo", "cpuburn") else {
        return;
    };
    let r = record_oracle(&bin, &[]);
    check_format(&r.gopeek, true);
    assert!(r.workers.contains_key("e"), "{:?}", r.workers);
    compare(&r);
}

/// The ptrace backend (running threads stopped at jittered ticks) against
/// the same oracle; its profile says which backend took it.
#[test]
fn oracle_ptrace_go1_27_default() {
    let Some(bin) = fixture("1.27", "default", "cpuburn") else {
        return;
    };
    let r = record_oracle(&bin, &["--backend", "ptrace"]);
    check_format(&r.gopeek, true);
    assert!(
        r.gopeek
            .comments
            .iter()
            .any(|c| c.starts_with("backend ptrace:")),
        "{:?}",
        r.gopeek.comments
    );
    compare(&r);
}

/// The rest of the version × mode matrix, on demand.
#[test]
fn oracle_full_matrix() {
    if std::env::var("GOPEEK_RECORD_MATRIX").as_deref() != Ok("1") {
        eprintln!("note: GOPEEK_RECORD_MATRIX=1 runs every Go version and mode");
        return;
    }
    for v in GO_VERSIONS {
        for m in ["default", "stripped", "pie", "trimpath", "noinline"] {
            if m == "default"
                || matches!((v, m), ("1.19" | "1.27", "stripped" | "pie"))
                || matches!((v, m), ("1.27", "trimpath" | "noinline"))
            {
                continue;
            }
            eprintln!("go{v}/{m}");
            check(v, m);
        }
    }
}

/// Stacks sampled on the system stack (GC work under `CPUBURN_GC`:
/// `systemstack(func() {...})` in the mark worker, assists and the
/// write barrier) continue on their own goroutine's stack, and only
/// there: wherever a stack crosses from `X.funcN` (run by
/// `runtime.systemstack` on g0) to the goroutine's frames, the frame that
/// called `systemstack` is `X`. A crossing onto another goroutine (the
/// M's `curg` read after the sample) would put `X.funcN` under a stranger
/// (`gcBgMarkWorker.func2` under `wbBufFlush`); a stack the rule cannot
/// prove is left cut at `systemstack` and counted partial.
/// cpuburn on one P with the GC busy (`CPUBURN_GC`): system-stack work
/// in mark workers, assists and write-barrier flushes.
fn gc_target(bin: &Path) -> Running {
    Launch::new(bin)
        .envs(&[("GOMAXPROCS", "1"), ("CPUBURN_GC", "1")])
        .kill_with_test()
        .start()
}

#[test]
fn system_stack_samples_cross_onto_their_own_goroutine() {
    let Some(bin) = fixture("1.27", "default", "cpuburn") else {
        return;
    };
    let run = gc_target(&bin);
    let out = succeed(
        gopeek()
            .args(["record", "--pid", &run.pid.to_string(), "--duration", "4s"])
            .args(["--rate", "250", "--format", "folded"]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut crossed, mut cut, mut wrong) = (0u64, 0u64, Vec::new());
    for line in text.lines() {
        let Some((stack, n)) = line.rsplit_once(' ') else {
            continue;
        };
        let n: u64 = n.parse().unwrap();
        let frames: Vec<&str> = stack.split(';').collect();
        for (i, f) in frames.iter().enumerate() {
            let Some(closure) = frames.get(i + 1) else {
                continue;
            };
            if *f != "runtime.systemstack" || !closure.contains(".func") {
                continue;
            }
            if i == 0 {
                cut += n;
                continue;
            }
            crossed += n;
            let encloser = &closure[..closure.rfind(".func").unwrap()];
            if frames[i - 1] != encloser {
                wrong.push(line.to_string());
            }
        }
    }
    eprintln!("system-stack samples: {crossed} crossed, {cut} cut at systemstack");
    assert!(
        wrong.is_empty(),
        "crossed onto a stranger:\n{}",
        wrong.join("\n")
    );
    assert!(
        crossed > 0,
        "no GC sample crossed onto its goroutine:\n{text}"
    );
    assert_running_untraced(run.pid);
}

/// The goroutine of a sample on the system stack is the one that called
/// `systemstack`, not whichever goroutine the M runs when gopeek reads
/// it (up to 25 ms later with perf): the GC mark worker (no pprof labels:
/// Go's system goroutines inherit none) runs almost only on g0, so its
/// samples must carry no `work` label. Naming it by the M's `curg` at the
/// drain gave 71-84% of them a labeled cpuburn worker's identity (five
/// recordings at 8ca2dad); the frame pointer the closure saved on g0
/// names it right (0 of about 100 per recording since).
#[test]
fn mark_worker_samples_keep_their_own_goroutine() {
    let Some(bin) = fixture("1.27", "default", "cpuburn") else {
        return;
    };
    let run = gc_target(&bin);
    for backend in ["perf", "ptrace"] {
        let path = std::env::temp_dir().join(format!(
            "gopeek-markworker-{}-{backend}.pprof",
            std::process::id()
        ));
        succeed(
            gopeek()
                .args(["record", "--pid", &run.pid.to_string(), "--duration", "4s"])
                .args(["--rate", "250", "--backend", backend, "--format", "pprof"])
                .arg("-o")
                .arg(&path),
        );
        let p = decode(&std::fs::read(&path).unwrap());
        let _ = std::fs::remove_file(&path);
        let (mut worker, mut labeled) = (0i64, 0i64);
        for s in &p.samples {
            if s.frames
                .iter()
                .any(|(f, _)| f.starts_with("runtime.gcBgMarkWorker"))
            {
                worker += s.values[0];
                if s.str_labels.iter().any(|(k, _)| k == "work") {
                    labeled += s.values[0];
                }
            }
        }
        eprintln!("{backend}: {worker} mark worker samples, {labeled} with a worker's label");
        assert!(worker > 0, "{backend}: no mark worker sample");
        assert!(
            labeled * 50 <= worker,
            "{backend}: {labeled} of {worker} mark worker samples carry a cpuburn worker's label"
        );
    }
    assert_running_untraced(run.pid);
}
