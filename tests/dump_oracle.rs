//! The oracle is Go itself: the `parked` fixture writes
//! `runtime.Stack(buf, true)` once its goroutines have settled, then stays
//! parked; gopeek dumps it from outside and every goroutine that was not
//! running must match Go's own text: id, status, every visible frame
//! (function, arguments, file:line +offset) in order, and the created-by
//! lines. Run for every installed Go version and build mode.
//!
//! Arguments are compared exactly, `?` words included: a `?` word is a
//! register argument's spill slot that may not hold the argument (Go
//! prints whatever the slot holds), but a goroutine that stays parked
//! never writes its stack, so Go's read and gopeek's later read see the
//! same bytes. The fixture passes only values that do not move (integers,
//! heap and static pointers): a stack moved by a GC in between would
//! change a pointer into the stack and nothing else. The goroutines that
//! run between the two reads (goroutine 1, the spinner) are not compared.

#[macro_use]
mod common;
use common::*;

/// Goroutines whose state legitimately differs between the fixture's own
/// dump and a later one: the dumping goroutine itself and anything the
/// oracle saw running or runnable (the spinner).
fn comparable(b: &Block) -> bool {
    b.id != 1 && b.status != "running" && b.status != "runnable"
}

fn check(version: &str, mode: &str) {
    check_env(version, mode, &[]);
}

fn check_env(version: &str, mode: &str, env: &[(&str, &str)]) {
    check_args(version, mode, env, &[]);
}

fn check_args(version: &str, mode: &str, env: &[(&str, &str)], extra: &[&str]) {
    let Some(bin) = fixture(version, mode, "parked") else {
        return;
    };
    let mut args = vec!["-out", "oracle.txt", "-lifetime", "10m"];
    args.extend_from_slice(extra);
    let run = start_env(&bin, &args, env);
    let oracle_text = std::fs::read_to_string(run.dir.path().join("oracle.txt")).unwrap();
    let oracle = parse_dump(&oracle_text);
    // The default (consistent) mode, and --nonblocking, which on a target
    // whose goroutines stay parked must print exactly the same.
    for how in [&[][..], &["--nonblocking"][..]] {
        let out = gopeek()
            .args(["dump", "--pid", &run.pid.to_string()])
            .args(how)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gopeek dump {how:?} failed on go{version}/{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours_text = String::from_utf8(out.stdout).unwrap();
        assert_running_untraced(run.pid);

        let (compared, failures) = differences(
            oracle.iter().filter(|b| comparable(b)),
            &blocks_by_id(&ours_text),
            Compare::Exact,
            false,
        );
        assert!(
            compared >= 20,
            "go{version}/{mode}: only {compared} parked goroutines in the oracle"
        );
        assert!(
            failures.is_empty(),
            "go{version}/{mode} {how:?}: {} of {compared} goroutines differ from Go's own traceback:\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }

    // The JSON form parses and carries the same goroutines.
    let out = gopeek()
        .args(["dump", "--pid", &run.pid.to_string(), "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "gopeek.dump/1");
    assert_eq!(v["pid"], run.pid);
    let gs: std::collections::HashMap<u64, &serde_json::Value> = v["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["id"].as_u64().unwrap(), g))
        .collect();
    for want in oracle.iter().filter(|b| comparable(b)) {
        let g = gs
            .get(&want.id)
            .unwrap_or_else(|| panic!("goroutine {} missing from JSON", want.id));
        assert_eq!(
            g["status"].as_str().unwrap_or("").replace(" (scan)", ""),
            want.status,
            "goroutine {} status",
            want.id
        );
        assert!(
            g["error"].is_null(),
            "goroutine {} has an error: {}",
            want.id,
            g["error"]
        );
    }
    assert!(v["pause_us"].as_u64().unwrap() > 0);
    // The spinner: when caught running, it names its OS thread (a thread
    // of the target) and its stack is unwound from that thread's registers.
    let spinner = gs.values().find(|g| {
        g["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["function"] == "main.spin")
    });
    let spinner = spinner.unwrap_or_else(|| {
        panic!("go{version}/{mode}: the spinning goroutine has no main.spin frame")
    });
    if spinner["status"] == "running" {
        let tid = spinner["thread"]
            .as_i64()
            .unwrap_or_else(|| panic!("running goroutine without a thread: {spinner}"));
        assert!(
            std::path::Path::new(&format!("/proc/{}/task/{tid}", run.pid)).exists(),
            "thread {tid} is not a thread of the target"
        );
        assert!(
            spinner["error"].is_null(),
            "running goroutine unwound with an error: {}",
            spinner["error"]
        );
        let last = spinner["frames"].as_array().unwrap().last().unwrap();
        assert_eq!(
            last["function"], "runtime.goexit",
            "the running stack reaches goexit"
        );
    }
    assert_running_untraced(run.pid);
}

/// `--system` against Go's own GOTRACEBACK=system dump: the fixture is
/// dumped by gopeek, then sent SIGQUIT, which makes the runtime print every
/// goroutine at level 2 (runtime frames, `gp= m= mp=` headers from 1.22,
/// ` fp= sp= pc=` on frames) and exit. Parked goroutines must match.
fn check_system(version: &str, mode: &str) {
    let Some(bin) = fixture(version, mode, "parked") else {
        return;
    };
    let mut run = start_env(
        &bin,
        &["-out", "oracle.txt", "-lifetime", "10m"],
        &[("GOTRACEBACK", "system")],
    );
    let out = succeed(gopeek().args(["dump", "--pid", &run.pid.to_string(), "--system"]));
    let ours = blocks_by_id(&String::from_utf8(out.stdout).unwrap());
    unsafe { libc::kill(run.pid, libc::SIGQUIT) };
    let _ = run.child.wait();
    let stderr = std::fs::read_to_string(run.dir.path().join("stderr.txt")).unwrap();
    // The SIGQUIT dump starts with the signal report; goroutine blocks follow.
    let oracle = parse_dump(&stderr[stderr.find("goroutine ").unwrap_or(0)..]);
    let (compared, failures) = differences(
        oracle
            .iter()
            .filter(|b| comparable(b) && !b.status.starts_with("syscall")),
        &ours,
        Compare::Exact,
        true,
    );
    assert!(
        compared >= 20,
        "go{version}/{mode}: only {compared} goroutines compared"
    );
    assert!(
        failures.is_empty(),
        "go{version}/{mode} --system: {} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn system_mode_matches_sigquit_go1_19() {
    check_system("1.19", "default");
}

#[test]
fn system_mode_matches_sigquit_go1_22() {
    check_system("1.22", "pie");
}

#[test]
fn system_mode_matches_sigquit_go1_27() {
    check_system("1.27", "stripped");
}

/// 10,000 extra goroutines parked at depths 1..12: every one must match.
#[test]
fn ten_thousand_goroutines() {
    check_args("1.27", "stripped", &[], &["-extra", "10000"]);
    check_args("1.21", "pie", &[], &["-extra", "10000"]);
}

/// With GODEBUG=tracebacklabels=1, Go 1.26+ prints pprof labels in the
/// goroutine header (1.26 inside the brackets, 1.27 after them); gopeek
/// reads the target's environment and prints them the same way.
#[test]
fn labels_in_headers_go1_26() {
    check_env("1.26", "stripped", &[("GODEBUG", "tracebacklabels=1")]);
}

#[test]
fn labels_in_headers_go1_27() {
    check_env("1.27", "default", &[("GODEBUG", "tracebacklabels=1")]);
}

/// The labels themselves, in JSON, for the map (≤1.23) and slice (1.24+)
/// representations.
#[test]
fn labels_in_json() {
    for v in ["1.19", "1.23", "1.24", "1.27"] {
        let Some(bin) = fixture(v, "stripped", "parked") else {
            continue;
        };
        let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
        let out = gopeek()
            .args(["dump", "--pid", &run.pid.to_string(), "--format", "json"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let labeled: Vec<&serde_json::Value> = d["goroutines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| !g["labels"].is_null())
            .collect();
        assert_eq!(labeled.len(), 1, "go{v}: one goroutine carries labels");
        assert_eq!(labeled[0]["labels"]["tenant"], "acme", "go{v}");
        assert_eq!(labeled[0]["labels"]["user id"], "x y", "go{v}");
    }
}

// One test per Go version and build mode, each calling `check(version, mode)`.
go_matrix!();
