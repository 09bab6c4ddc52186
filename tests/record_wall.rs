//! `gopeek record --wall` against the oracle: the `wallclock` fixture's
//! goroutines spend known shares of their wall time in known functions,
//! under a pprof label naming their role, and the mixed ones time their
//! two phases themselves (`phases SLEEP_NS WAIT_NS` on SIGUSR1). gopeek's
//! wall-clock profile of the same interval must say:
//!
//! * every worker goroutine sampled at (nearly) every capture, parked or
//!   running: >= 95% of the captures the profile's comment counts (the
//!   rest are reads given up because the stack kept changing);
//! * `main.sleepLoop` under `time.Sleep`, `main.chanWait` in a channel
//!   receive, `main.spin`: >= 97% of each goroutine's samples;
//! * the mixed goroutines' share in `main.mixedSleep` (the rest in
//!   `main.mixedWait`) within ±4 points of the share the fixture measured
//!   over the interval, and >= 95% of their samples in one of the two
//!   phases. Their phases are parked ones of random length (the
//!   fixture's doc), so that the 16 goroutines do not move in step:
//!   goroutines woken together by a stall of a loaded machine, or
//!   queued behind one P, stay in step with fixed phase lengths, each
//!   capture then counts as one sample, not 16, and differences of ±6
//!   points were measured that way; with random lengths, 1.3 points at
//!   most over 6 runs (the binomial deviation at 16 goroutines × 200
//!   captures is 0.8 points);
//! * each worker's samples carry its `role` label and goroutine id; the
//!   pprof file has Go's shape (`samples/count`, `wall/nanoseconds`,
//!   values `[n, n*period]`), and `go tool pprof -top -tagfocus` of every
//!   installed toolchain opens it.
//!
//! The recording is ended by SIGINT (Ctrl-C), which must still write the
//! profile; the target ends running and untraced. Go 1.19 and 1.27 (the
//! label representation and the g layout differ), default builds; on 1.27
//! also pie (the load bias on every PC a capture reads) and cgo (external
//! linking, threads started by C's pthread_create), the two build modes
//! whose captures take another path than the default's; stripped and
//! trimpath are dump's code path unchanged (tests/dump_oracle.rs). Also: the other
//! formats, gopeek killed mid-record, the target exiting mid-record.

mod common;
#[path = "record/pprof.rs"]
mod pprof;

use common::*;
use pprof::{decode, Profile, Sample};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the interval of the comparison lasts.
const INTERVAL: Duration = Duration::from_secs(8);

struct Recorded {
    p: Profile,
    raw: Vec<u8>,
    workers: HashMap<String, Vec<i64>>,
    /// The fixture's own share of the mixed goroutines' time in
    /// `main.mixedSleep`.
    sleep_share: f64,
    stderr: String,
}

fn launch(bin: &Path, lines: Arc<Mutex<Vec<String>>>) -> Running {
    // Two Ps: one for the spinner, one free, so that a woken goroutine
    // runs at once rather than after the spinner's next preemption (a
    // shared run queue puts the mixed goroutines in step).
    Launch::new(bin)
        .envs(&[("GOMAXPROCS", "2")])
        .on_line(move |l| lines.lock().unwrap().push(l.to_string()))
        .kill_with_test()
        .start()
}

/// The `phases` line the fixture prints after its Nth SIGUSR1.
fn phases(pid: i32, lines: &Mutex<Vec<String>>, n: usize) -> (f64, f64) {
    kill(pid, libc::SIGUSR1).unwrap();
    let got = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix("phases "))
            .map(str::to_string)
            .nth(n - 1)
    };
    assert!(
        wait_until(Duration::from_secs(10), || got().is_some()),
        "the fixture did not print its phases"
    );
    let l = got().unwrap();
    let (a, b) = l.split_once(' ').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

fn record_oracle(bin: &Path) -> Recorded {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let run = launch(bin, lines.clone());
    let out = run.dir.path().join("wall.pprof");
    let child = gopeek()
        .args(["record", "--wall", "--pid", &run.pid.to_string()])
        .args(["--duration", "10m", "--rate", "50", "-o"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (sleep0, wait0) = phases(run.pid, &lines, 1);
    std::thread::sleep(INTERVAL);
    let (sleep1, wait1) = phases(run.pid, &lines, 2);
    kill(child.id() as i32, libc::SIGINT).unwrap();
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    assert!(
        done.status.success(),
        "gopeek record --wall failed: {stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    wait_running_untraced(run.pid).unwrap();
    let workers_line = lines
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| l.strip_prefix("workers ").map(str::to_string))
        .unwrap();
    let raw = std::fs::read(&out).unwrap();
    let (sleep, wait) = (sleep1 - sleep0, wait1 - wait0);
    Recorded {
        p: decode(&raw),
        raw,
        workers: serde_json::from_str(&workers_line).unwrap(),
        sleep_share: sleep / (sleep + wait).max(1.0),
        stderr,
    }
}

fn goid(s: &Sample) -> Option<i64> {
    s.num_labels
        .iter()
        .find(|(k, _)| k == "goroutine")
        .map(|x| x.1)
}

fn has(s: &Sample, f: &str) -> bool {
    s.frames.iter().any(|(n, _)| n == f)
}

/// Samples of goroutine `id`, and of those the ones `pred` accepts.
fn share(p: &Profile, ids: &[i64], pred: impl Fn(&Sample) -> bool) -> (i64, i64) {
    let (mut yes, mut all) = (0, 0);
    for s in p
        .samples
        .iter()
        .filter(|s| goid(s).is_some_and(|g| ids.contains(&g)))
    {
        all += s.values[0];
        if pred(s) {
            yes += s.values[0];
        }
    }
    (yes, all)
}

fn captures(p: &Profile) -> i64 {
    let c = p
        .comments
        .iter()
        .find_map(|c| c.strip_prefix("wall clock: "))
        .unwrap_or_else(|| panic!("no wall clock comment: {:?}", p.comments));
    c.split(' ').next().unwrap().parse().unwrap()
}

fn check_format(p: &Profile) {
    assert_eq!(
        p.sample_types,
        [
            ("samples".to_string(), "count".to_string()),
            ("wall".to_string(), "nanoseconds".to_string())
        ]
    );
    assert_eq!(
        p.period_type,
        ("wall".to_string(), "nanoseconds".to_string())
    );
    assert!(p.period > 0);
    for s in &p.samples {
        assert_eq!(s.values.len(), 2);
        assert_eq!(s.values[1], s.values[0] * p.period);
    }
}

fn compare(r: &Recorded) {
    let p = &r.p;
    let n = captures(p);
    let report = format!(
        "{n} captures; gopeek stderr: {}\ncomments: {:?}",
        r.stderr, p.comments
    );
    assert!(n >= 100, "too few captures to compare\n{report}");
    for (role, ids) in &r.workers {
        for id in ids {
            // A running goroutine whose stack kept changing through every
            // re-read of a capture is given up (counted, never drawn): on a
            // loaded machine that is a few percent of the spinner's
            // captures (395 of 416 seen in CI).
            let (_, all) = share(p, &[*id], |_| true);
            assert!(
                all as f64 >= 0.90 * n as f64,
                "goroutine {id} ({role}) sampled {all} times in {n} captures\n{report}"
            );
        }
        let (labelled, all) = share(p, ids, |s| {
            s.str_labels.iter().any(|(k, v)| k == "role" && v == role)
        });
        assert_eq!(labelled, all, "samples of {role} without role={role}");
    }
    let w = &r.workers;
    let at_least = |role: &str, what: &str, pred: &dyn Fn(&Sample) -> bool| {
        let (yes, all) = share(p, &w[role], pred);
        let f = yes as f64 / all.max(1) as f64;
        assert!(f >= 0.97, "{role}: {f:.3} of its samples {what}\n{report}");
    };
    at_least("sleep", "in main.sleepLoop → time.Sleep", &|s| {
        has(s, "main.sleepLoop") && has(s, "time.Sleep")
    });
    at_least("chan", "in main.chanWait → runtime.chanrecv*", &|s| {
        has(s, "main.chanWait")
            && s.frames
                .iter()
                .any(|(f, _)| f.starts_with("runtime.chanrecv"))
    });
    at_least("spin", "in main.spin", &|s| has(s, "main.spin"));
    let (sleep, all) = share(p, &w["mixed"], |s| {
        has(s, "main.mixedSleep") && has(s, "time.Sleep")
    });
    let (phase, _) = share(p, &w["mixed"], |s| {
        has(s, "main.mixedSleep") || has(s, "main.mixedWait")
    });
    let mine = sleep as f64 / all.max(1) as f64;
    assert!(
        phase as f64 >= 0.95 * all as f64,
        "mixed: {phase} of {all} samples in a phase\n{report}"
    );
    assert!(
        (mine - r.sleep_share).abs() <= 0.04,
        "mixed: gopeek {mine:.3} of the time in main.mixedSleep, the fixture {:.3}\n{report}",
        r.sleep_share
    );
    eprintln!(
        "agreement: mixed sleep share gopeek {mine:.3}, fixture {:.3}, over {all} samples\n{report}",
        r.sleep_share
    );
}

/// `go tool pprof -top` of every installed toolchain reads the profile,
/// with the goroutine's labels as tags.
fn opened_by_every_go_tool_pprof(raw: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wall.pprof");
    std::fs::write(&path, raw).unwrap();
    // The oldest and the newest toolchain (every one is slow on a loaded
    // machine: each builds its pprof tool once per cache).
    let all = installed_go();
    for go in all
        .first()
        .into_iter()
        .chain(all.last().filter(|_| all.len() > 1))
    {
        let out = Command::new(go)
            .args(["tool", "pprof", "-top", "-tagfocus=role=spin"])
            .arg(&path)
            .env("GOTOOLCHAIN", "local")
            .env("PPROF_TMPDIR", dir.path())
            .env("HOME", dir.path())
            .env("GOCACHE", gocache(go))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} tool pprof: {}",
            go.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("Type: wall"), "{}:\n{stdout}", go.display());
        assert!(stdout.contains("main.spin"), "{}:\n{stdout}", go.display());
        assert!(
            !stdout.contains("main.mixedWait"),
            "-tagfocus=role=spin kept main.mixedWait:\n{stdout}"
        );
    }
}

#[test]
fn oracle_go1_27_default() {
    let Some(bin) = fixture("1.27", "default", "wallclock") else {
        return;
    };
    let r = record_oracle(&bin);
    check_format(&r.p);
    compare(&r);
    opened_by_every_go_tool_pprof(&r.raw);
}

#[test]
fn oracle_go1_27_pie() {
    let Some(bin) = fixture("1.27", "pie", "wallclock") else {
        return;
    };
    let r = record_oracle(&bin);
    check_format(&r.p);
    compare(&r);
}

#[test]
fn oracle_go1_27_cgo() {
    let Some(bin) = fixture("1.27", "cgo", "wallclock") else {
        return;
    };
    let r = record_oracle(&bin);
    check_format(&r.p);
    compare(&r);
}

#[test]
fn oracle_go1_19_default() {
    let Some(bin) = fixture("1.19", "default", "wallclock") else {
        return;
    };
    let r = record_oracle(&bin);
    check_format(&r.p);
    compare(&r);
}

fn record(pid: i32, args: &[&str]) -> (Vec<u8>, String) {
    let out = gopeek()
        .args(["record", "--wall", "--pid", &pid.to_string()])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "gopeek record --wall {args:?}: {stderr}"
    );
    (out.stdout, stderr)
}

#[test]
fn folded_speedscope_and_svg() {
    let Some(bin) = fixture("1.27", "default", "wallclock") else {
        return;
    };
    let run = launch(&bin, Arc::default());
    let (folded, stderr) = record(run.pid, &["--duration", "1s", "--format", "folded"]);
    let folded = String::from_utf8(folded).unwrap();
    let mut total = 0u64;
    for l in folded.lines() {
        let (stack, n) = l.rsplit_once(' ').unwrap();
        total += n.parse::<u64>().unwrap();
        assert!(!stack.is_empty());
    }
    // Parked and running goroutines side by side.
    for f in [
        ";main.sleepLoop;time.Sleep;",
        ";main.chanWait;",
        ";main.spin",
    ] {
        assert!(folded.contains(f), "no {f} in\n{folded}");
    }
    assert!(
        stderr.contains(&format!("{total} goroutine samples")),
        "{stderr}\n{folded}"
    );

    let (ss, _) = record(run.pid, &["--duration", "1s", "--format", "speedscope"]);
    let v: serde_json::Value = serde_json::from_slice(&ss).unwrap();
    let p = &v["profiles"][0];
    assert_eq!(p["type"], "sampled");
    assert_eq!(p["unit"], "nanoseconds");
    assert!(
        p["name"].as_str().unwrap().starts_with("Wall time of pid"),
        "{}",
        p["name"]
    );
    let frames = v["shared"]["frames"].as_array().unwrap();
    assert!(frames.iter().any(|f| f["name"] == "main.chanWait"));
    let weights = p["weights"].as_array().unwrap();
    assert_eq!(weights.len(), p["samples"].as_array().unwrap().len());

    let (svg, _) = record(run.pid, &["--duration", "1s", "--format", "svg"]);
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.contains("<svg") && svg.contains("Wall time of pid"));
    assert!(svg.contains("main.sleepLoop"));
    wait_running_untraced(run.pid).unwrap();
}

/// SIGKILL of gopeek at any moment, a capture's hold included: the kernel
/// detaches, the target runs on untraced.
#[test]
fn gopeek_killed_mid_record_leaves_target_running() {
    let Some(bin) = fixture("1.27", "default", "wallclock") else {
        return;
    };
    let run = launch(&bin, Arc::default());
    for delay_ms in [300, 650, 1100] {
        let mut child = gopeek()
            .args(["record", "--wall", "--pid", &run.pid.to_string()])
            .args(["--duration", "10m", "--rate", "200", "--format", "folded"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill(child.id() as i32, libc::SIGKILL).unwrap();
        child.wait().unwrap();
        wait_running_untraced(run.pid).unwrap();
    }
}

#[test]
fn target_exiting_mid_record_gives_what_was_sampled() {
    let Some(bin) = fixture("1.27", "default", "wallclock") else {
        return;
    };
    let run = launch(&bin, Arc::default());
    let pid = run.pid;
    let child = gopeek()
        .args(["record", "--wall", "--pid", &pid.to_string()])
        .args(["--duration", "10m", "--format", "folded"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    drop(run); // SIGKILL and reap
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("process {pid} exited during the recording")),
        "{stderr}"
    );
    let folded = String::from_utf8_lossy(&out.stdout);
    assert!(folded.contains("main.chanWait"), "{folded}");
}

/// `--wall` takes no backend: exit 2 before anything is opened.
#[test]
fn wall_with_backend_is_a_usage_error() {
    let out = gopeek()
        .args(["record", "--wall", "--backend", "perf", "--pid", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
