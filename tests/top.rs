//! `gopeek top` as a user meets it, on the `cpuburn` fixture (Go 1.27):
//! in a real terminal (tmux: start it, read the screen with capture-pane,
//! switch views with the keys, quit with q), and `--once --format json`
//! (schema `gopeek.top/1`) checked against the fixture: its labels and
//! goroutine ids, its system-call heavy worker, and the CPU the kernel
//! charged it over the same interval.

mod common;

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
    assert_eq!(r["gc_percent"], 0.0);
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
    let cmd = format!(
        "{} top --pid {}; echo top-exited-$?; sleep 60",
        env!("CARGO_BIN_EXE_gopeek"),
        run.pid
    );
    t.cmd(&[
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
