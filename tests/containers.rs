//! Wherever the target lives: `gopeek ps` against the processes this test
//! starts, and targets in their own pid and mount namespaces (as docker,
//! containerd and podman make them), dumped from the host, from inside the
//! namespace, and from a sidecar that shares only the pid namespace.
//!
//! The oracles are Go's own: `go version EXE` for the version, the
//! fixture's own `runtime.Stack` for the goroutines (and their number).
//! Namespaces need root (CAP_SYS_ADMIN), which the test suite runs as.

#[macro_use]
mod common;
use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Go's own reading of the binary's version (`go version EXE`).
fn go_version_of(version: &str, exe: &Path) -> String {
    let out = Command::new(goroot(version).join("bin/go"))
        .arg("version")
        .arg(exe)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

/// The goroutines in a `runtime.Stack(buf, true)` text.
fn oracle_blocks(dir: &Path) -> Vec<Block> {
    parse_dump(&std::fs::read_to_string(dir.join("oracle.txt")).unwrap())
}

fn ps_json(args: &[&str]) -> Value {
    let out = gopeek()
        .args(["ps", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gopeek ps failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "gopeek.ps/1");
    v
}

fn by_pid(v: &Value) -> HashMap<i64, Value> {
    v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["pid"].as_i64().unwrap(), p.clone()))
        .collect()
}

#[test]
fn ps_lists_go_processes_with_their_versions_and_goroutine_counts() {
    let cells = [("1.19", "stripped"), ("1.27", "default"), ("1.27", "pie")];
    let mut runs = Vec::new();
    for (version, mode) in cells {
        let Some(bin) = fixture(version, mode, "parked") else {
            return;
        };
        // -extra makes the counts differ from one fixture to the next.
        let extra = (runs.len() * 37).to_string();
        let run = start(
            &bin,
            &["-out", "oracle.txt", "-lifetime", "10m", "-extra", &extra],
        );
        runs.push((version, bin, run, extra));
    }
    // A process that is not Go, and this test binary (Rust) itself.
    let mut sleeper = Command::new("sleep").arg("300").spawn().unwrap();
    let sleeper_pid = sleeper.id() as i64;
    let me = std::process::id() as i64;

    let v = ps_json(&["--all"]);
    let procs = by_pid(&v);
    for (version, bin, run, extra) in &runs {
        let p = procs.get(&(run.pid as i64)).unwrap_or_else(|| {
            panic!(
                "fixture {} (pid {}) not listed: {v:#}",
                bin.display(),
                run.pid
            )
        });
        assert_eq!(p["go_version"], go_version_of(version, bin), "{p:#}");
        assert_eq!(
            p["nspid"], run.pid,
            "outside any namespace NSpid is the pid"
        );
        assert_eq!(p["module"], "gopeek.test/parked");
        assert_eq!(p["exe"], bin.display().to_string());
        assert_eq!(
            p["cmdline"],
            format!(
                "{} -out oracle.txt -lifetime 10m -extra {extra}",
                bin.display()
            )
        );
        assert_eq!(p["user"], "root");
        assert!(p["rss_bytes"].as_u64().unwrap() > 1 << 20, "{p:#}");
        assert!(p["container"].is_null());
        // Parked goroutines only: the count cannot move while we read it.
        let want = oracle_blocks(run.dir.path()).len() as u64;
        assert_eq!(p["goroutines"].as_u64(), Some(want), "{p:#}");
        assert_running_untraced(run.pid);
    }
    for not_go in [sleeper_pid, me] {
        assert!(
            !procs.contains_key(&not_go),
            "non-Go pid {not_go} listed: {v:#}"
        );
        let skipped = v["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["pid"] == not_go)
            .unwrap_or_else(|| panic!("pid {not_go} not under skipped: {v:#}"));
        assert!(
            skipped["reason"]
                .as_str()
                .unwrap()
                .starts_with("not a Go program"),
            "{skipped}"
        );
    }
    // Every listed process really is Go: its own toolchain reads a version.
    for p in procs.values() {
        assert!(p["go_version"].as_str().unwrap().starts_with("go1."), "{p}");
    }

    // --no-goroutines reads no memory: the counts are null.
    let v = ps_json(&["--no-goroutines"]);
    let procs = by_pid(&v);
    assert!(v.get("skipped").is_none());
    for (_, _, run, _) in &runs {
        assert!(procs[&(run.pid as i64)]["goroutines"].is_null());
    }

    // The table: a header and one line per fixture with its pid, version
    // and count.
    let out = gopeek().arg("ps").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.trim_start().starts_with("PID  NSPID  USER  GO"),
        "{text}"
    );
    for (version, bin, run, _) in &runs {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&run.pid.to_string()))
            .unwrap_or_else(|| panic!("pid {} not in the table:\n{text}", run.pid));
        assert!(line.contains(&go_version_of(version, bin)), "{line}");
        let want = oracle_blocks(run.dir.path()).len().to_string();
        assert_eq!(
            line.split_whitespace().nth(4),
            Some(want.as_str()),
            "{line}"
        );
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

/// A fixture in its own pid and mount namespaces, started the way a
/// container runtime would: its executable bind-mounted at a path that,
/// seen from the host, is an empty file (so only `/proc/PID/exe` reads
/// the real one). Killed with its namespace when dropped.
struct Contained {
    run: Running,
    /// The fixture's pid as the host sees it.
    host_pid: i32,
}

fn start_contained(bin: &Path) -> Contained {
    let dir = tempfile::tempdir().unwrap();
    let inside = dir.path().join("inside-app");
    std::fs::write(&inside, b"").unwrap();
    let script = format!(
        "mount --bind '{}' '{}' && exec '{}' -out oracle.txt -lifetime 10m",
        bin.display(),
        inside.display(),
        inside.display()
    );
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let run = Launch::new(Path::new("/usr/bin/unshare"))
        .args(&[
            "--pid",
            "--mount",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .kill_with_test()
        .on_line(move |l| {
            if l.starts_with("ready ") {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(l.to_string());
                }
            }
        })
        .spawn();
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("contained fixture did not start: {}", run.stderr()));
    // Inside its namespace the fixture is pid 1.
    assert_eq!(line, "ready 1", "{}", run.stderr());
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", run.pid)).unwrap();
    let host_pid: i32 = children.trim().parse().unwrap();
    // Keep the temporary directory (the bind-mount source's placeholder)
    // alive with the run.
    std::mem::forget(dir);
    Contained { run, host_pid }
}

impl Drop for Contained {
    fn drop(&mut self) {
        // The namespace's init: killing it ends the namespace.
        let _ = kill(self.host_pid, libc::SIGKILL);
    }
}

/// Compares a dump's text with the fixture's own, goroutine by goroutine
/// (the ones that stay parked).
fn assert_same_as_oracle(ours: &str, oracle: &[Block], who: &str) {
    let (compared, failures) = differences(
        oracle
            .iter()
            .filter(|b| b.id != 1 && b.status != "running" && b.status != "runnable"),
        &blocks_by_id(ours),
        Compare::Lines,
        false,
    );
    assert!(failures.is_empty(), "{who}:\n{}", failures.join("\n\n"));
    assert!(compared >= 20, "{who}: only {compared} goroutines compared");
}

fn gopeek_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gopeek"))
}

#[test]
fn dumps_a_target_in_its_own_pid_and_mount_namespace() {
    let Some(bin) = fixture("1.27", "default", "parked") else {
        return;
    };
    let c = start_contained(&bin);
    let host_pid = c.host_pid;
    let oracle = oracle_blocks(c.run.dir.path());
    let exe_link = std::fs::read_link(format!("/proc/{host_pid}/exe")).unwrap();
    assert!(
        exe_link.to_string_lossy().contains("inside-app"),
        "{exe_link:?}: the kernel names the path inside the namespace"
    );
    assert_eq!(
        std::fs::metadata(&exe_link).map(|m| m.len()).unwrap_or(0),
        0
    );

    // From the host.
    let out = succeed(gopeek().args(["dump", "--pid", &host_pid.to_string()]));
    assert_same_as_oracle(
        &String::from_utf8(out.stdout).unwrap(),
        &oracle,
        "from the host",
    );
    assert_running_untraced(host_pid);
    let out = gopeek()
        .args(["dump", "--pid", &host_pid.to_string(), "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["pid"].as_i64(), v["nspid"].as_i64()),
        (Some(host_pid as i64), Some(1))
    );
    let ps = by_pid(&ps_json(&[]));
    assert_eq!(ps[&(host_pid as i64)]["nspid"], 1);
    assert_eq!(
        ps[&(host_pid as i64)]["goroutines"].as_u64(),
        Some(oracle.len() as u64)
    );

    // From inside the namespace (`docker exec`, `kubectl exec`): its pid is 1.
    let out = Command::new("nsenter")
        .args(["-t", &host_pid.to_string(), "-p", "-m", "--"])
        .arg(gopeek_path())
        .args(["dump", "--pid", "1"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_as_oracle(&String::from_utf8(out.stdout).unwrap(), &oracle, "inside");

    // From a sidecar (a `kubectl debug` ephemeral container): the target's
    // pid namespace shared, its own mount namespace and /proc, where the
    // target's executable path names an empty file.
    let out = Command::new("nsenter")
        .args([
            "-t",
            &host_pid.to_string(),
            "-p",
            "--",
            "unshare",
            "--mount",
            "--mount-proc",
            "--",
        ])
        .arg(gopeek_path())
        .args(["dump", "--pid", "1"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_as_oracle(&String::from_utf8(out.stdout).unwrap(), &oracle, "sidecar");
    assert_running_untraced(host_pid);
}

/// A refused attach says which of the causes applies and its exact fix,
/// with exit status 4: no CAP_SYS_PTRACE (a container without
/// `--cap-add=SYS_PTRACE`), and a target outside gopeek's user namespace
/// (a rootless container looking at the host).
#[test]
fn refused_attach_names_what_is_missing_and_the_fix() {
    let Some(bin) = fixture("1.27", "default", "parked") else {
        return;
    };
    let run = start(&bin, &["-out", "oracle.txt", "-lifetime", "10m"]);
    let pid = run.pid.to_string();
    let gopeek = gopeek_path();
    // Root without CAP_SYS_PTRACE, as docker runs a container by default.
    let out = Command::new("capsh")
        .arg("--drop=cap_sys_ptrace")
        .arg("--")
        .arg("-c")
        .arg(format!("exec '{}' dump --pid {pid}", gopeek.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    for fix in [
        "permission denied attaching to PID",
        "gopeek lacks CAP_SYS_PTRACE",
        "--cap-add=SYS_PTRACE",
        "securityContext.capabilities.add: [\"SYS_PTRACE\"]",
        "ptrace_scope",
    ] {
        assert!(err.contains(fix), "{fix:?} missing: {err}");
    }
    assert!(!err.contains("user namespace"), "{err}");
    // In a user namespace of its own (full capabilities there, none over
    // the target's).
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--"])
        .arg(&gopeek)
        .args(["dump", "--pid", &pid])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("the target is in another user namespace"),
        "{err}"
    );
    assert!(err.contains("nsenter -t PID -U"), "{err}");
    assert!(!err.contains("lacks CAP_SYS_PTRACE"), "{err}");
    assert_running_untraced(run.pid);
}
