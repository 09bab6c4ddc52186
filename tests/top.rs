//! `gopeek top` as a user meets it, on the `cpuburn` fixture (Go 1.27):
//! in a real terminal (tmux: start it, read the screen with capture-pane,
//! switch views with the keys, quit with q), and `--once --format json`
//! (schema `gopeek.top/1`) checked against the fixture: its labels and
//! goroutine ids, its system-call heavy worker, and the CPU the kernel
//! charged it over the same interval.

mod common;
#[path = "record/pprof.rs"]
mod pprof;

use common::*;
use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn target() -> Option<(Running, HashSet<i64>)> {
    let bin = fixture("1.27", "default", "cpuburn")?;
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l2 = lines.clone();
    let run = Launch::new(&bin)
        .envs(&[("GOMAXPROCS", "1")])
        .on_line(move |l| l2.lock().unwrap().push(l.to_string()))
        .kill_with_test()
        .start();
    let workers = lines
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| l.strip_prefix("workers ").map(str::to_string))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&workers).unwrap();
    let ids = v
        .as_object()
        .unwrap()
        .values()
        .flat_map(|a| a.as_array().unwrap().iter().map(|i| i.as_i64().unwrap()))
        .collect();
    Some((run, ids))
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn once_json_agrees_with_the_fixture() {
    let Some((run, ids)) = target() else { return };
    let (t0, c0) = (Instant::now(), cpu_ticks(run.pid));
    let out = gopeek()
        .args([
            "top",
            "--pid",
            &run.pid.to_string(),
            "--once",
            "--duration",
            "3s",
        ])
        .args(["--format", "json"])
        .output()
        .unwrap();
    let (wall, cpu) = (
        t0.elapsed().as_secs_f64(),
        (cpu_ticks(run.pid) - c0) as f64 / 100.0,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["schema"], "gopeek.top/1");
    assert_eq!(r["pid"], run.pid);
    let samples = r["samples"].as_u64().unwrap();
    assert!(samples > 0);
    let fs = r["functions"].as_array().unwrap();
    let own: u64 = fs.iter().map(|f| f["own_samples"].as_u64().unwrap()).sum();
    assert_eq!(own, samples, "every sample has one leaf function");
    let f = |name: &str| fs.iter().find(|f| f["function"] == name);
    for name in ["main.burnA", "main.mixB"] {
        assert!(
            f(name).is_some_and(|f| f["own_samples"].as_u64().unwrap() > 0),
            "{name}: {r}"
        );
    }
    // burnC spends its time in what it calls (the read system call):
    // most of its total is not its own.
    let burn_c = f("main.burnC").expect("main.burnC");
    let (own_c, total_c) = (
        burn_c["own_samples"].as_u64().unwrap(),
        burn_c["total_samples"].as_u64().unwrap(),
    );
    assert!(total_c > 0 && 2 * own_c < total_c, "{burn_c}");
    // burnC reads /dev/zero: the kernel copies, so system-call time shows.
    assert!(r["syscall_percent"].as_f64().unwrap() > 0.0, "{r}");
    // The fixture allocates next to nothing: what GC there is (the
    // runtime's forced cycle every 2 minutes, the first cycles after start)
    // is a small fraction of one CPU.
    let gc = r["gc_percent"].as_f64().unwrap();
    assert!((0.0..2.0).contains(&gc), "gc_percent {gc}: {r}");
    assert_eq!(r["cgo_percent"], 0.0);
    let labels: HashSet<String> = r["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["labels"]["work"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        labels,
        ["a", "b", "c", "d"].map(String::from).into_iter().collect()
    );
    for g in r["goroutines"].as_array().unwrap() {
        if let Some(id) = g["goroutine"].as_i64() {
            if g["labels"]["work"].is_string() {
                assert!(ids.contains(&id), "goroutine {id} is not a worker: {g}");
            }
        }
    }
    // CPU as the kernel charged it over (about) the same interval: the
    // fixture burns steadily, so the two rates agree within sampling and
    // tick-accounting error.
    let kernel_pct = 100.0 * cpu / wall;
    let mine = r["cpu_percent"].as_f64().unwrap();
    assert!(
        (mine - kernel_pct).abs() <= 0.3 * kernel_pct.max(10.0),
        "gopeek {mine:.1}% vs /proc {kernel_pct:.1}%"
    );
    assert_running_untraced(run.pid);
}

#[test]
fn without_a_terminal_and_without_once_it_says_what_to_do() {
    let Some((run, _)) = target() else { return };
    let out = gopeek()
        .args(["top", "--pid", &run.pid.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--once"));
}

struct Tmux(String);

impl Tmux {
    /// `gopeek top --pid PID EXTRA` in a 150x40 session named `top`; the
    /// shell then prints `top-exited-CODE` and stays, so the screen after
    /// gopeek ends can be read.
    fn start_top(&self, pid: i32, extra: &[&str]) {
        let cmd = format!(
            "{} top --pid {pid} {}; echo top-exited-$?; sleep 60",
            env!("CARGO_BIN_EXE_gopeek"),
            extra.join(" ")
        );
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "150",
            "-y",
            "40",
            &cmd,
        ]);
    }
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.0)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "top"])
    }
    fn wait_for(&self, what: &str) -> String {
        let mut last = String::new();
        let ok = wait_until(Duration::from_secs(20), || {
            last = self.screen();
            last.contains(what)
        });
        assert!(ok, "{what:?} never appeared; the screen:\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.0)
            .arg("kill-server")
            .output();
    }
}

#[test]
fn live_view_in_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("note: skipping, tmux is not installed (scripts/setup installs it)");
        return;
    }
    let Some((run, _)) = target() else { return };
    let t = Tmux(format!("gopeek-top-{}", std::process::id()));
    t.start_top(run.pid, &[]);
    let s = t.wait_for("main.burnA");
    assert!(
        s.contains("Total CPU:") && s.contains("syscall:") && s.contains("%Own"),
        "{s}"
    );
    eprintln!("--- functions ---\n{s}");
    t.cmd(&["send-keys", "-t", "top", "l"]);
    let s = t.wait_for("work=a");
    eprintln!("--- labels (l) ---\n{s}");
    t.cmd(&["send-keys", "-t", "top", "g"]);
    let s = t.wait_for("Goroutine");
    eprintln!("--- goroutines (g) ---\n{s}");
    t.cmd(&["send-keys", "-t", "top", "t"]);
    let s = t.wait_for("Thread");
    eprintln!("--- threads (t) ---\n{s}");
    t.cmd(&["send-keys", "-t", "top", "f"]);
    t.wait_for("%Own");
    t.cmd(&["send-keys", "-t", "top", "q"]);
    let s = t.wait_for("top-exited-0");
    // The alternate screen is gone: the shell's screen is back, empty.
    assert!(!s.contains("Total CPU:"), "{s}");
    assert_running_untraced(run.pid);
}

/// Go's own GC share, from the fixture's runtime/pprof profile: samples
/// with the background mark worker or an assist anywhere on the stack.
fn go_gc(p: &pprof::Profile) -> (i64, i64) {
    let mut gc = 0;
    let mut total = 0;
    for s in &p.samples {
        let n = s.values[0];
        total += n;
        if s.frames
            .iter()
            .any(|(f, _)| f == "runtime.gcBgMarkWorker" || f.starts_with("runtime.gcAssist"))
        {
            gc += n;
        }
    }
    (gc, total)
}

/// The header's GC share (`gc_percent` of `cpu_percent`) against Go's:
/// cpuburn with CPUBURN_GC keeps a pointer-rich 10 MB live heap while six
/// goroutines allocate without pause (GC 10-15% of Go's samples of the
/// process's CPU, GOMAXPROCS=1). Each round runs `top --once` for 7 s at
/// 250 Hz, inside which the fixture profiles itself for 6 s at 250 Hz;
/// rounds repeat until Go's profiles hold 2000 samples (at most 90 s: the
/// fixture gets a fraction of a core on a loaded machine). gopeek's
/// samples of what Go's profiler cannot see (sysmon, Go's SIGPROF handler)
/// are left out of its denominator, as in tests/record.rs.
///
/// Tolerance: the 3 points, or 3 standard deviations of the
/// difference of two binomial shares when a loaded machine gave fewer
/// samples (with 2000 Go samples that is about 3 points already). The
/// 2-point bias measured here at first (gopeek higher by 3.1, 1.6, 2.2,
/// 2.0) predates e821e50: a sample on the system stack was then followed
/// onto whatever goroutine the M ran at the drain, 25 ms later, and that
/// error is one-sided: a GC closure (`gcBgMarkWorker.func2`) counts as GC
/// under any goroutine, but a mutator's `wbBufFlush.func1` grafted under
/// the mark worker's stack counted as GC too. Now the goroutine is proven
/// by the frame pointer the closure on g0 saved (src/profile/attribute.rs);
/// deltas measured since: docs/bench/record.md.
#[test]
fn gc_share_agrees_with_go() {
    gc_share("perf");
}

/// The same with the ptrace backend.
#[test]
fn gc_share_agrees_with_go_ptrace() {
    gc_share("ptrace");
}

fn gc_share(backend: &str) {
    let Some(bin) = fixture("1.27", "default", "cpuburn") else {
        return;
    };
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l2 = lines.clone();
    let launch = Launch::new(&bin);
    let go_path = launch.dir().join("go.pprof");
    let run = launch
        .envs(&[
            ("GOMAXPROCS", "1"),
            ("CPUBURN_GC", "1"),
            ("CPUBURN_PROFILE", go_path.to_str().unwrap()),
            ("CPUBURN_SECONDS", "6"),
            ("CPUBURN_HZ", "250"),
        ])
        .on_line(move |l| l2.lock().unwrap().push(l.to_string()))
        .kill_with_test()
        .start();
    let t0 = Instant::now();
    let (mut go_gc_n, mut go_n) = (0i64, 0i64);
    let (mut my_gc, mut my_n) = (0f64, 0f64);
    let mut round = 0;
    while go_n < 2000 && t0.elapsed() < Duration::from_secs(90) {
        round += 1;
        let child = gopeek()
            .args(["top", "--pid", &run.pid.to_string(), "--once"])
            .args(["--duration", "7s", "--rate", "250", "--format", "json"])
            .args(["--backend", backend])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        request_go_profile(&run, &lines, round);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let samples = r["samples"].as_f64().unwrap();
        let cpu = r["cpu_percent"].as_f64().unwrap();
        let blind: f64 = r["functions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                matches!(
                    f["function"].as_str(),
                    Some("runtime.sysmon" | "runtime.sigtramp")
                )
            })
            .map(|f| f["total_samples"].as_f64().unwrap())
            .sum();
        if cpu > 0.0 {
            my_gc += samples * r["gc_percent"].as_f64().unwrap() / cpu;
        }
        my_n += samples - blind;
        let p = pprof::decode(&std::fs::read(format!("{}.{round}", go_path.display())).unwrap());
        let (g, n) = go_gc(&p);
        go_gc_n += g;
        go_n += n;
    }
    assert!(
        go_n > 0 && my_n > 0.0,
        "no samples: Go {go_n}, gopeek {my_n}"
    );
    let go_share = go_gc_n as f64 / go_n as f64;
    let my_share = my_gc / my_n;
    // The fixture must make GC sizeable, or the check says little.
    assert!(go_share >= 0.05, "Go's GC share is only {go_share:.3}");
    let p = (go_share + my_share) / 2.0;
    let sd = (p * (1.0 - p) * (1.0 / go_n as f64 + 1.0 / my_n)).sqrt();
    let tol = 0.03f64.max(3.0 * sd);
    eprintln!(
        "GC share ({backend}): gopeek {:.1}% of {my_n:.0} samples, Go {:.1}% of {go_n} samples ({round} rounds), delta {:+.1}, tolerance {:.1} points",
        100.0 * my_share,
        100.0 * go_share,
        100.0 * (my_share - go_share),
        100.0 * tol
    );
    assert!(
        (my_share - go_share).abs() <= tol,
        "GC share: gopeek {my_share:.3} vs Go {go_share:.3} (tolerance {tol:.3})"
    );
    assert_running_untraced(run.pid);
}

/// Ctrl-C in the terminal (SIGINT to the foreground job, gopeek and not
/// the target) while `top` samples with the ptrace backend, whose ticks
/// stop the target's threads: gopeek ends with success, the target runs on
/// untraced, and the terminal is given back as it was (the alternate
/// screen left, and echo on again: what is typed afterwards shows).
#[test]
fn ctrl_c_in_a_terminal_restores_it_and_leaves_the_target_running() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("note: skipping, tmux is not installed (scripts/setup installs it)");
        return;
    }
    let Some((run, _)) = target() else { return };
    let t = Tmux(format!("gopeek-top-int-{}", std::process::id()));
    t.start_top(run.pid, &["--backend", "ptrace"]);
    t.wait_for("main.burnA");
    // A few ticks more, so that the interrupt lands while sampling.
    std::thread::sleep(Duration::from_millis(1500));
    t.cmd(&["send-keys", "-t", "top", "C-c"]);
    let s = t.wait_for("top-exited-");
    assert!(s.contains("top-exited-0"), "{s}");
    assert!(
        !s.contains("Total CPU:"),
        "the alternate screen is still shown:\n{s}"
    );
    t.cmd(&["send-keys", "-t", "top", "typed-after-top"]);
    t.wait_for("typed-after-top");
    assert_running_untraced(run.pid);
}
