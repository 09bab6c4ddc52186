//! `gopeek record` and `gopeek top` through real sudo: profiling must be
//! allowed by the policy (`profile = true`), the perf events are opened as
//! root (before the drop, or by the root monitor for later threads), the
//! ptrace backend's ticks are held by the root monitor, labels follow
//! `show_memory`, and the profile file belongs to the invoking user.

use super::common::{assert_running_untraced, fixture, Launch, Running};
use super::pprof::{decode, Profile};
use super::support::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The CPU burner of tests/record.rs (Go 1.27, default build).
fn cpuburn() -> Option<PathBuf> {
    fixture("1.27", "default", "cpuburn")
}

/// cpuburn, owned by the target user.
fn start_burner(bin: &Path, env: &Env) -> Running {
    Launch::new(bin)
        .envs(&[("GOMAXPROCS", "2")])
        .owner(env.target_uid, env.target_gid)
        .start()
}

/// The policy allowing the target user's processes, profiling on, memory
/// as asked.
fn profiling_policy(show_memory: bool) -> PolicyGuard {
    PolicyGuard::set(
        Some(&format!(
            "[[allow]]\nusers = [\"{TARGET_USER}\"]\nprofile = true\nshow_memory = {show_memory}\n"
        )),
        0o644,
    )
}

/// Flat sample counts per leaf function.
fn leaves(p: &Profile) -> std::collections::BTreeMap<String, i64> {
    let mut m = std::collections::BTreeMap::new();
    for s in &p.samples {
        if let Some((f, _)) = s.frames.first() {
            *m.entry(f.clone()).or_default() += s.values[0];
        }
    }
    m
}

/// `sudo gopeek record ... -o FILE`: the profile, checked to be the
/// invoking user's file, and gopeek's stderr.
fn record(env: &Env, pid: i32, extra: &[&str]) -> (Profile, String) {
    let dir = shared_dir();
    let path = dir.path().join("cpu.pprof");
    let pid_s = pid.to_string();
    let mut args = vec!["record", "--pid", &pid_s, "--duration", "2s"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-o", path.to_str().unwrap()]);
    let out = run(&args);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let m = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (env.uid, env.gid),
        "owner of the profile"
    );
    (decode(&std::fs::read(&path).unwrap()), err)
}

/// Every burner of cpuburn shows up as a leaf, with a fair share.
fn assert_burners(p: &Profile, what: &str) {
    let l = leaves(p);
    let total: i64 = l.values().sum();
    assert!(total >= 50, "{what}: only {total} samples: {l:?}");
    // burnD's hot loop is its generic leaf, named as Go names it.
    for f in ["main.burnA", "main.leafD[go.shape.uint64]"] {
        let n = l.get(f).copied().unwrap_or(0);
        assert!(
            n * 20 >= total,
            "{what}: {f} has {n} of {total} samples: {l:?}"
        );
    }
    assert!(
        l.keys().any(|k| k == "main.burnB" || k == "main.mixB"),
        "{what}: no burnB: {l:?}"
    );
}

fn labelled(p: &Profile) -> usize {
    p.samples
        .iter()
        .filter(|s| s.str_labels.iter().any(|(k, _)| k == "work"))
        .count()
}

/// The perf backend under sudo, for a target of another user: the burners
/// in Go's names, goroutine ids, no labels without `show_memory`; with
/// it, the labels. Both attempts logged; the target runs untraced.
#[test]
fn record_under_sudo_follows_the_policy() {
    let Some(env) = setup() else { return };
    let Some(bin) = cpuburn() else { return };
    let audit = env.audit.as_ref().unwrap();
    let target = start_burner(&bin, &env);
    {
        let _p = profiling_policy(false);
        let (p, err) = record(&env, target.pid, &["--rate", "250"]);
        assert_burners(&p, "perf, no show_memory");
        assert_eq!(labelled(&p), 0, "labels shown without show_memory");
        assert!(
            p.samples
                .iter()
                .any(|s| s.num_labels.iter().any(|(k, _)| k == "goroutine")),
            "no goroutine ids"
        );
        assert!(err.contains("pprof labels are not shown"), "{err}");
        assert!(
            p.comments.iter().any(|c| c.starts_with("backend perf")),
            "{:?}",
            p.comments
        );
        let line = audit.expect(target.pid, "allowed by rule 1 of /etc/gopeek/policy.toml");
        assert!(line.contains("profile=true"), "{line}");
        audit.expect(target.pid, "ok: recorded");
        assert_running_untraced(target.pid);
    }
    let _p = profiling_policy(true);
    let (p, _) = record(&env, target.pid, &["--rate", "250"]);
    assert_burners(&p, "perf, show_memory");
    assert!(labelled(&p) * 2 > p.samples.len(), "labels missing");
    assert_running_untraced(target.pid);
}

/// The ptrace backend under sudo: every tick's hold is made by the root
/// monitor (the reader cannot ptrace); `--wall` likewise for each capture.
#[test]
fn ptrace_and_wall_record_under_sudo() {
    let Some(env) = setup() else { return };
    let Some(bin) = cpuburn() else { return };
    let _p = profiling_policy(true);
    let target = start_burner(&bin, &env);
    let (p, err) = record(&env, target.pid, &["--backend", "ptrace"]);
    assert_burners(&p, "ptrace");
    assert!(
        p.comments.iter().any(|c| c.starts_with("backend ptrace")),
        "{:?} {err}",
        p.comments
    );
    assert_running_untraced(target.pid);
    let (p, _) = record(&env, target.pid, &["--wall", "--rate", "10"]);
    assert_eq!(p.sample_types[0].0, "samples", "{:?}", p.sample_types);
    assert!(
        p.sample_types.iter().any(|t| t.0 == "wall"),
        "{:?}",
        p.sample_types
    );
    let funcs: Vec<&str> = p
        .samples
        .iter()
        .flat_map(|s| s.frames.iter().map(|f| f.0.as_str()))
        .collect();
    assert!(funcs.contains(&"main.burnA"), "{funcs:?}");
    assert_running_untraced(target.pid);
}

/// A rule without `profile = true` allows `dump` but not `record` or
/// `top`: exit 4 as every policy refusal, the key named, the refusal
/// logged, nothing attached.
#[test]
fn profiling_not_allowed_is_refused_and_logged() {
    let Some(env) = setup() else { return };
    let Some(bin) = cpuburn() else { return };
    let _p = PolicyGuard::set(
        Some(&format!(
            "[[allow]]\nusers = [\"{TARGET_USER}\"]\nshow_memory = true\n"
        )),
        0o644,
    );
    let audit = env.audit.as_ref().unwrap();
    let target = start_burner(&bin, &env);
    let pid = target.pid.to_string();
    let dir = shared_dir();
    let path = dir.path().join("cpu.pprof");
    for args in [
        vec![
            "record",
            "--pid",
            &pid,
            "--duration",
            "1s",
            "-o",
            path.to_str().unwrap(),
        ],
        vec!["top", "--pid", &pid, "--once", "--duration", "1s"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("profile = true"), "{}", stderr(&out));
    }
    assert!(!path.exists(), "the refused record created its output");
    audit.expect(target.pid, "refused: the sudo policy does not allow");
    // The same rule still allows a dump.
    let out = run(&["dump", "--pid", &pid]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_running_untraced(target.pid);
}

/// `top --once --format json` under sudo: the burners, labels only with
/// `show_memory`.
#[test]
fn top_once_json_under_sudo() {
    let Some(env) = setup() else { return };
    let Some(bin) = cpuburn() else { return };
    let _p = profiling_policy(false);
    let audit = env.audit.as_ref().unwrap();
    let target = start_burner(&bin, &env);
    let out = run(&[
        "top",
        "--pid",
        &target.pid.to_string(),
        "--once",
        "--duration",
        "2s",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "gopeek.top/1", "{v}");
    let names: Vec<&str> = v["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["function"].as_str())
        .collect();
    assert!(names.contains(&"main.burnA"), "{names:?}");
    assert!(
        !v.to_string().contains("\"work\""),
        "labels shown without show_memory: {v}"
    );
    audit.expect(target.pid, "ok: top");
    assert_running_untraced(target.pid);
}
