//! `--nonblocking` (issue 6) against a target whose goroutines never stay
//! put: go-fixtures/churn's workers wake, grow and shrink (move) their
//! stacks and re-park, thousands of times a second, while gopeek reads
//! them with the process running.
//!
//! What must hold in every dump: a goroutine is either shown with a stack
//! that is one of the stacks the program can really have (the right
//! functions, in the right order, at the parking lines that go with its
//! status), or reported as changing with no frames at all. Never a torn
//! mix. The goroutines that never move must always be shown, exactly.
//! The default (consistent) mode on the same target must show every
//! worker, none of them torn.
//!
//! That the change detection really runs is checked too: gopeek's timing
//! line (GOPEEK_DEBUG_TIMING) counts goroutines seen to change between two
//! reads (and read again).

mod common;

use common::{assert_running_untraced, gopeek, start};
use serde_json::Value;
use std::collections::HashMap;

/// Line of each `// LINE:name` marker in the fixture's source.
fn marker_lines() -> HashMap<String, i64> {
    let src = std::fs::read_to_string(common::root().join("go-fixtures/churn/main.go")).unwrap();
    src.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let name = l.split("// LINE:").nth(1)?;
            Some((name.trim().to_string(), i as i64 + 1))
        })
        .collect()
}

fn targets() -> Vec<(String, std::path::PathBuf)> {
    common::fixtures(&[("1.27", "default"), ("1.19", "stripped")], "churn")
}

/// Checks one goroutine of the fixture; `Err` says what is wrong.
/// Returns `Ok(true)` when it was shown with a stack, `Ok(false)` when it
/// was reported as changing.
/// Runtime functions that write SP (switch stacks); a running goroutine's
/// unwind from its thread's registers stops in them.
const SWITCHES_STACKS: [&str; 5] = [
    "runtime.mcall",
    "runtime.systemstack",
    "runtime.morestack",
    "runtime.gogo",
    "runtime.asmcgocall",
];

fn check_goroutine(
    g: &Value,
    lines: &HashMap<String, i64>,
    nonblocking: bool,
) -> Result<bool, String> {
    let frames: Vec<(&str, i64)> = g["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["runtime"].as_bool().unwrap())
        .map(|f| (f["function"].as_str().unwrap(), f["line"].as_i64().unwrap()))
        .collect();
    let status = g["status"].as_str().unwrap().replace(" (scan)", "");
    if let Some(err) = g["error"].as_str() {
        if !nonblocking {
            return Err(format!("consistent mode reported an error: {err}"));
        }
        if !err.contains("--nonblocking") || !g["frames"].as_array().unwrap().is_empty() {
            return Err(format!("error {err:?} with {} frames", frames.len()));
        }
        return Ok(false);
    }
    if g["error"] != Value::Null {
        return Err("error is not a string or null".into());
    }
    // Parked statuses pin the innermost frame to a parking line; any other
    // (running, runnable, copystack while growing the stack, preempted...)
    // only constrains the order of the functions.
    let running = !matches!(status.as_str(), "chan receive" | "select");
    let l = |n: &str| lines[n];
    let Some((&(last_fn, last_line), inner)) = frames.split_last() else {
        // A running goroutine caught by its thread's registers inside the
        // code that switches stacks (mcall on its way to park, ...): the
        // unwinder stops at that SPWRITE function, as Go's own does, so
        // only that runtime frame is known. A true state, not a torn one.
        let innermost = g["frames"].as_array().unwrap().first();
        let switching = innermost
            .and_then(|f| f["function"].as_str())
            .is_some_and(|f| SWITCHES_STACKS.contains(&f));
        if status == "running" && switching && g["frames"].as_array().unwrap().len() == 1 {
            return Ok(true);
        }
        return Err("no frames".into());
    };
    if last_fn != "main.worker" {
        return Err(format!("outermost frame is {last_fn}"));
    }
    let Some(&(top_fn, top_line)) = inner.first() else {
        // Caught running in worker itself (between parks).
        return if running {
            Ok(true)
        } else {
            Err(format!("[{status}] only main.worker"))
        };
    };
    match top_fn {
        "main.parkA" => {
            if inner.len() != 1 || last_line != l("callA") {
                return Err(format!("parkA stack is {frames:?}"));
            }
            if !running && (top_line != l("parkA") || status != "chan receive") {
                return Err(format!("[{status}] parkA at line {top_line}"));
            }
        }
        "main.parkB" => {
            if inner.len() != 1 || last_line != l("callB") {
                return Err(format!("parkB stack is {frames:?}"));
            }
            if !running && (top_line != l("parkB") || status != "select") {
                return Err(format!("[{status}] parkB at line {top_line}"));
            }
        }
        "main.deep" => {
            if last_line != l("callDeep") {
                return Err(format!("deep called from line {last_line}"));
            }
            if inner.iter().any(|&(f, _)| f != "main.deep") {
                return Err(format!("mixed stack {frames:?}"));
            }
            // Every caller frame sits at the recursive call.
            if inner[1..].iter().any(|&(_, line)| line != l("deepCall")) {
                return Err(format!(
                    "deep callers not at the recursive call: {frames:?}"
                ));
            }
            if !running && (top_line != l("deepLeaf") || status != "chan receive") {
                return Err(format!("[{status}] deep leaf at line {top_line}"));
            }
            // 41..=240 deep frames exist; Go elides the middle of stacks
            // over 100 frames, the JSON keeps them all.
            if inner.len() > 240 {
                return Err(format!("{} deep frames", inner.len()));
            }
        }
        other => {
            if !running {
                return Err(format!("[{status}] innermost user frame {other}"));
            }
        }
    }
    Ok(true)
}

/// Runs `dumps` dumps and checks every goroutine; returns (shown workers,
/// changing workers, changes seen as reported by the timing line).
fn run_dumps(
    bin: &std::path::Path,
    rate: &str,
    nonblocking: bool,
    dumps: usize,
) -> (usize, usize, usize) {
    let lines = marker_lines();
    let run = start(bin, &["-n", "300", "-rate", rate, "-stable", "40"]);
    let (mut shown, mut changing, mut reread) = (0, 0, 0);
    let mut failures = Vec::new();
    for _ in 0..dumps {
        let mut cmd = gopeek();
        cmd.args(["dump", "--pid", &run.pid.to_string(), "--format", "json"]);
        if nonblocking {
            cmd.arg("--nonblocking");
        }
        let out = cmd.env("GOPEEK_DEBUG_TIMING", "1").output().unwrap();
        assert!(
            out.status.success(),
            "gopeek dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_running_untraced(run.pid);
        let stderr = String::from_utf8_lossy(&out.stderr);
        reread += stderr
            .split(", changed ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["mode"],
            if nonblocking {
                "nonblocking"
            } else {
                "consistent"
            }
        );
        let mut stable = 0;
        for g in v["goroutines"].as_array().unwrap() {
            let cb = &g["created_by"];
            let is_worker = cb["function"] == "main.main" && cb["line"] == lines["goWorker"];
            let fns: Vec<&str> = g["frames"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| !f["runtime"].as_bool().unwrap())
                .filter_map(|f| f["function"].as_str())
                .collect();
            if fns == ["main.stableWait"] {
                let f = g["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["function"] == "main.stableWait")
                    .unwrap();
                if f["line"] == lines["stable"] && g["error"].is_null() {
                    stable += 1;
                }
                continue;
            }
            if !is_worker {
                continue;
            }
            match check_goroutine(g, &lines, nonblocking) {
                Ok(true) => shown += 1,
                Ok(false) => changing += 1,
                Err(e) => {
                    let mut json = g.to_string();
                    json.truncate(1500);
                    failures.push(format!("goroutine {}: {e}\n{json}", g["id"]))
                }
            }
        }
        assert_eq!(
            stable, 40,
            "every goroutine that never moves is shown exactly"
        );
    }
    assert!(
        failures.is_empty(),
        "{} torn or impossible stacks:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (shown, changing, reread)
}

#[test]
fn nonblocking_never_shows_a_torn_stack() {
    for (name, bin) in targets() {
        // Moderate churn: most reads are confirmed at once.
        let (shown, changing, reread) = run_dumps(&bin, "20", true, 15);
        eprintln!("{name} rate 20: {shown} shown, {changing} changing, {reread} changes seen");
        assert!(
            shown > 15 * 300 / 2,
            "{name}: only {shown} workers shown in 15 dumps"
        );
        // Unlimited churn: many goroutines change while read.
        let (shown2, changing2, reread2) = run_dumps(&bin, "0", true, 15);
        eprintln!("{name} rate 0: {shown2} shown, {changing2} changing, {reread2} changes seen");
        assert!(shown2 > 0, "{name}: nothing confirmed under full churn");
        assert!(
            reread + reread2 > 0,
            "{name}: no goroutine changed while read: the change detection was not exercised"
        );
    }
}

#[test]
fn consistent_mode_on_a_churning_target_shows_every_worker() {
    for (name, bin) in targets() {
        let (shown, changing, _) = run_dumps(&bin, "0", false, 10);
        eprintln!("{name}: {shown} shown, {changing} changing");
        assert_eq!(changing, 0);
        assert_eq!(shown, 300 * 10, "{name}: every worker in every dump");
    }
}

/// The state a fresh-clone CI run once caught: a running worker whose
/// thread was inside `runtime.mcall` on its way to park. It is a true
/// state; the same lone frame in a parked goroutine is not.
#[test]
fn a_worker_caught_switching_stacks_is_a_true_state() {
    let lines = marker_lines();
    let g: Value = serde_json::from_str(
        r#"{"created_by":{"file":"go-fixtures/churn/main.go","function":"main.main","goroutine":null,"line":124},
            "error":null,"frames":[{"file":"/usr/lib/go-1.19/src/runtime/asm_amd64.s","function":"runtime.mcall",
            "inlined":false,"line":429,"pc":4580871,"runtime":true}],"id":237,"labels":null,
            "locked_to_thread":false,"status":"running","thread":7530,"wait_minutes":null}"#,
    )
    .unwrap();
    for nonblocking in [false, true] {
        assert_eq!(check_goroutine(&g, &lines, nonblocking), Ok(true));
    }
    let mut parked = g.clone();
    parked["status"] = "chan receive".into();
    assert!(check_goroutine(&parked, &lines, false).is_err());
    let mut deeper = g.clone();
    deeper["frames"] = serde_json::json!([g["frames"][0], g["frames"][0]]);
    assert!(check_goroutine(&deeper, &lines, false).is_err());
}
