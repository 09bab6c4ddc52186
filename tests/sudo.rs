//! gopeek through real `sudo` (issue 4: least privilege, policy, audit).
//!
//! Runs only as root (CI and the dev machines run tests as root), with
//! `sudo` installed by scripts/setup. Each test:
//!
//! * creates (idempotently) two unprivileged system users: `gopeektest`,
//!   who runs `sudo gopeek`, and `gopeektgt`, who owns the "allowed" target;
//! * installs a sudoers drop-in allowing `gopeektest` to run exactly this
//!   gopeek binary, and removes it afterwards;
//! * runs `runuser -u gopeektest -- sudo -n gopeek ...`, so gopeek sees the
//!   environment real sudo gives it.
//!
//! The tests touch machine-wide files (`/etc/sudoers.d`, `/etc/gopeek`,
//! `/dev/log`), so they take an exclusive lock on
//! `/tmp/gopeek-sudo-tests.lock` and restore what they changed.
//!
//! The set-up, sudo, policy and audit helpers are in tests/sudo/support.rs;
//! targets start through the shared harness (tests/common).

mod common;
#[cfg(target_arch = "x86_64")]
#[path = "sudo/inject.rs"]
mod inject;
#[path = "record/pprof.rs"]
mod pprof;
#[path = "sudo/record.rs"]
mod record;
#[path = "sudo/support.rs"]
mod support;

use common::{assert_running_untraced, status_field, Launch, Running};
use std::fs::OpenOptions;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

/// The newest parked fixture that is built.
fn parked() -> Option<PathBuf> {
    common::newest_fixture("default", "parked")
}

/// Starts the parked fixture as `owner` (`None`: as root) and waits for
/// its `ready` line.
fn start_target(bin: &Path, owner: Option<(u32, u32)>) -> Running {
    start_target_with(bin, owner, &[])
}

/// [`start_target`] with extra fixture arguments.
fn start_target_with(bin: &Path, owner: Option<(u32, u32)>, extra: &[&str]) -> Running {
    let mut l = Launch::new(bin)
        .args(&["-out", "oracle.txt", "-lifetime", "10m"])
        .args(extra);
    if let Some((uid, gid)) = owner {
        l = l.owner(uid, gid);
    }
    l.start()
}

/// The central observation: while gopeek writes its output (after attach,
/// capture and detach) it runs as the invoking user with nothing to
/// regain. The output is a FIFO with a 4 KiB buffer that the test reads
/// only after looking at /proc/<gopeek>/status, so gopeek is caught
/// blocked in `write` (its wchan `pipe_write`). The target belongs to a third user, so the dump
/// also proves that memory was read through the /proc/PID/mem descriptor
/// opened before the drop (process_vm_readv is refused to the invoking
/// user) and that ptrace requests (the detach) still worked.
#[test]
fn dump_runs_as_the_invoking_user_after_attach() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let dir = shared_dir();
    let fifo = dir.path().join("dump.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::chown(&fifo, Some(env.uid), Some(env.gid)).unwrap();
    let mut rd = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    // SAFETY: fcntl on an open pipe fd.
    unsafe { libc::fcntl(rd.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    let fifo_s = fifo.to_str().unwrap().to_string();
    let pid_s = target.pid.to_string();
    let mut child = sudo_gopeek(&["dump", "--pid", &pid_s, "--format", "json", "-o", &fifo_s])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until gopeek has dumped and blocks in write: the pipe holds
    // output and the writer sleeps in pipe_write. (A pipe of one 4 KiB
    // slot is not always filled: a large write after a short one does
    // not merge into the slot the short one left.)
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD into a local int.
        unsafe { libc::ioctl(rd.as_raw_fd(), libc::FIONREAD, &mut n) };
        let blocked = || {
            find_gopeek_as(&fifo_s, |p| {
                std::fs::read_to_string(format!("/proc/{p}/wchan"))
                    .is_ok_and(|w| w.contains("pipe_write"))
            })
            .is_some()
        };
        if n > 0 && blocked() {
            break;
        }
        if let Some(st) = child.try_wait().unwrap() {
            let mut e = String::new();
            child.stderr.take().unwrap().read_to_string(&mut e).unwrap();
            panic!("gopeek ended before filling the pipe ({st}): {e}");
        }
        assert!(Instant::now() < deadline, "gopeek never wrote its output");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The reader (sudo's child), not its root monitor (the reader's child).
    let gpid = find_gopeek_as(&fifo_s, |p| {
        let ppid = status_field(p, "PPid");
        std::fs::read_to_string(format!("/proc/{ppid}/comm")).is_ok_and(|c| c.trim() == "sudo")
    })
    .expect("the gopeek process");
    let (u, g) = (env.uid, env.gid);
    assert_eq!(status_field(gpid, "Uid"), format!("{u} {u} {u} {u}"));
    assert_eq!(status_field(gpid, "Gid"), format!("{g} {g} {g} {g}"));
    assert_eq!(status_field(gpid, "Groups"), format!("{g}"));
    assert_eq!(status_field(gpid, "CapEff"), "0000000000000000");
    assert_eq!(status_field(gpid, "CapPrm"), "0000000000000000");
    assert_eq!(status_field(gpid, "NoNewPrivs"), "1");
    // Not dumpable: the kernel shows its /proc files as root's, and the
    // invoking user cannot ptrace it to borrow its root-opened descriptors.
    assert_eq!(
        std::fs::metadata(format!("/proc/{gpid}/fd")).unwrap().uid(),
        0,
        "gopeek is still dumpable after the drop"
    );
    // The target was released before the output was written.
    assert_running_untraced(target.pid);
    // Drain the FIFO and check the dump itself.
    // SAFETY: clearing O_NONBLOCK on an open fd.
    unsafe { libc::fcntl(rd.as_raw_fd(), libc::F_SETFL, 0) };
    let mut json = Vec::new();
    rd.read_to_end(&mut json).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "gopeek failed: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["pid"], target.pid);
    assert!(v["goroutines"].as_array().unwrap().len() > 5, "{v}");
}

/// `-o FILE` under sudo is created by and for the invoking user.
#[test]
fn output_file_belongs_to_the_invoking_user() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let dir = shared_dir();
    let path = dir.path().join("dump.txt");
    let out = run(&[
        "dump",
        "--pid",
        &target.pid.to_string(),
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = std::fs::metadata(&path).unwrap();
    assert_eq!((m.uid(), m.gid()), (env.uid, env.gid));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("goroutine "), "{text}");
    assert!(out.stdout.is_empty());
    assert_running_untraced(target.pid);
}

/// A symlink planted by another user where the output should go is not
/// followed: exit 4, a message naming it, the victim untouched, and the
/// target never attached.
#[test]
fn symlinked_output_is_refused() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let dir = shared_dir();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let link = dir.path().join("dump.txt");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(env.target_uid), Some(env.target_gid)).unwrap();
    let out = run(&[
        "dump",
        "--pid",
        &target.pid.to_string(),
        "-o",
        link.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_running_untraced(target.pid);
    // A regular file of another user is not overwritten either.
    let theirs = dir.path().join("theirs.txt");
    std::fs::write(&theirs, "theirs\n").unwrap();
    std::os::unix::fs::chown(&theirs, Some(env.target_uid), Some(env.target_gid)).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run(&[
        "dump",
        "--pid",
        &target.pid.to_string(),
        "-o",
        theirs.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("is owned by uid"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "theirs\n");
}

// ---------------------------------------------------------------------------
// Policy and audit.

fn labels_shown(json: &serde_json::Value) -> bool {
    json["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| !g["labels"].is_null())
}

/// Whether any frame of a JSON dump carries argument values.
fn args_shown(json: &serde_json::Value) -> bool {
    json["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["frames"].as_array().unwrap())
        .any(|f| !f["args"].is_null())
}

/// No policy file: a root-owned target is refused (exit 4), the refusal is
/// in the system log, and the target was never attached.
#[test]
fn root_target_is_refused_by_default_and_logged() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let audit = env.audit.as_ref().unwrap();
    let target = start_target(&parked, None);
    let out = run(&["dump", "--pid", &target.pid.to_string()]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains(&format!(
            "the sudo policy does not allow inspecting process {}",
            target.pid
        )) && e.contains("it runs as root"),
        "{e}"
    );
    assert!(out.stdout.is_empty());
    let line = audit.expect(target.pid, "refused: ");
    assert!(
        line.contains(&format!("user=\"{USER}\" uid={} ", env.uid)),
        "{line}"
    );
    assert!(line.contains("target_uid=0 "), "{line}");
    assert!(
        line.contains(&format!("exe=\"{}\"", parked.display())),
        "{line}"
    );
    assert!(line.contains("command=\""), "{line}");
    // authpriv.warning
    assert!(
        line.contains("<84>") || matches!(audit, AuditSink::Journal { .. }),
        "{line}"
    );
    assert_running_untraced(target.pid);
}

/// With the privilege split (a root monitor holds the target on request,
/// `process::monitor`), `--nonblocking` and `leaks` work under sudo: the
/// dropped reader asks for every hold. Both give the goroutines and leave
/// the target running and untraced.
#[test]
fn nonblocking_and_leaks_work_under_sudo() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let pid = target.pid.to_string();
    let count = |args: &[&str]| {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["goroutines"].as_array().unwrap().len(), v["mode"].clone())
    };
    let (held, _) = count(&["dump", "--pid", &pid, "--format", "json"]);
    let (nonblocking, mode) = count(&["dump", "--pid", &pid, "--nonblocking", "--format", "json"]);
    assert_eq!(mode, "nonblocking");
    assert!(held > 5);
    assert_eq!(nonblocking, held);
    assert_running_untraced(target.pid);
    let out = run(&[
        "leaks",
        "--pid",
        &pid,
        "--samples",
        "3",
        "--interval",
        "100ms",
        "--format",
        "json",
    ]);
    // 0: nothing grows (the parked fixture is still); 1 would be a leak.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["taken_at"].as_array().map(|a| a.len()), Some(3), "{v}");
    assert_running_untraced(target.pid);
}

/// The two processes of `sudo gopeek` after the split: the reader (the
/// invoking user's uid) and its root monitor (uid 0, a child of it).
fn split_parts(needle: &str, uid: u32) -> Option<(i32, i32)> {
    let reader = find_gopeek_as(needle, |p| {
        status_field(p, "Uid").starts_with(&format!("{uid} "))
    })?;
    let monitor = find_gopeek_as(needle, |p| {
        status_field(p, "Uid") == "0 0 0 0" && status_field(p, "PPid") == reader.to_string()
    })?;
    Some((reader, monitor))
}

/// Kill either part of the split, at a random moment of a long `leaks`
/// run that holds the target over and over: the target must run again,
/// untraced, within a second, and the other part must end (the monitor on
/// EOF; the reader with an error that names the monitor).
#[test]
fn killing_either_part_releases_the_target() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let target = start_target_with(
        &parked,
        Some((env.target_uid, env.target_gid)),
        &["-extra", "20000"],
    );
    let pid_s = target.pid.to_string();
    let mut held_at_kill = 0;
    for (round, victim) in ["reader", "monitor", "reader", "monitor"]
        .iter()
        .enumerate()
    {
        let tag = format!("{}", 101 + round);
        let mut child = sudo_gopeek(&[
            "leaks",
            "--pid",
            &pid_s,
            "--samples",
            "500",
            "--interval",
            "10ms",
            "--top",
            &tag,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let (reader, monitor) = loop {
            if let Some(p) = split_parts(&format!("--top\0{tag}"), env.uid) {
                break p;
            }
            assert!(Instant::now() < deadline, "never saw both parts of gopeek");
            assert!(child.try_wait().unwrap().is_none(), "gopeek ended early");
            std::thread::sleep(Duration::from_millis(5));
        };
        // The reader cannot regain anything and cannot trace.
        assert_eq!(status_field(reader, "CapEff"), "0000000000000000");
        assert_eq!(status_field(reader, "NoNewPrivs"), "1");
        assert_eq!(status_field(reader, "Seccomp"), "2");
        // A moment in the run: wait for a hold, or up to 300 ms.
        let until = Instant::now() + Duration::from_millis(100 + 50 * round as u64);
        while Instant::now() < until && status_field(target.pid, "TracerPid") == "0" {}
        if status_field(target.pid, "TracerPid") != "0" {
            held_at_kill += 1;
        }
        let victim_pid = if *victim == "reader" { reader } else { monitor };
        // SAFETY: killing a process this test started.
        unsafe { libc::kill(victim_pid, libc::SIGKILL) };
        let took = common::wait_threads(target.pid, Duration::from_secs(5), "running", |s| {
            s != 't' && s != 'T'
        });
        assert!(
            took.as_ref().is_ok_and(|d| *d < Duration::from_secs(1)),
            "round {round} ({victim} killed): target not released: {took:?}"
        );
        let out = child.wait_with_output().unwrap();
        if *victim == "monitor" {
            assert_ne!(out.status.code(), Some(0));
            assert!(stderr(&out).contains("root monitor"), "{}", stderr(&out));
        }
        let gone = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{monitor}")).exists()
            && !status_field(monitor, "State").starts_with('Z')
        {
            assert!(Instant::now() < gone, "the monitor outlived the reader");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_running_untraced(target.pid);
    }
    eprintln!("note: the target was held at {held_at_kill} of 4 kills");
}

/// Default policy, a target of another user: dumped, the decision and the
/// outcome logged, and (not the invoker's own process) labels withheld,
/// with a note saying so.
#[test]
fn allowed_target_is_dumped_logged_and_labels_withheld() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let audit = env.audit.as_ref().unwrap();
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let out = run(&["dump", "--pid", &target.pid.to_string(), "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!labels_shown(&v), "labels were shown");
    assert!(!args_shown(&v), "argument values were shown");
    assert!(
        v["note"]
            .as_str()
            .unwrap_or_default()
            .contains("memory contents (labels, arguments) not shown"),
        "{v}"
    );
    assert!(
        stderr(&out).contains("labels and argument values are not shown"),
        "{}",
        stderr(&out)
    );
    let allowed = audit.expect(target.pid, "allowed by default policy");
    assert!(
        allowed.contains(&format!("target_uid={} ", env.target_uid)),
        "{allowed}"
    );
    assert!(allowed.contains("show_memory=false"), "{allowed}");
    let done = audit.expect(target.pid, "ok: pause_us=");
    assert!(done.contains(&format!("user=\"{USER}\"")), "{done}");
    assert_running_untraced(target.pid);
}

/// A policy rule naming root and the executable allows a root target, with
/// labels; memory is then read after the drop through the descriptor
/// opened as root.
#[test]
fn policy_rule_allows_a_root_target_with_labels() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let _policy = PolicyGuard::set(
        Some(&format!(
            "[[allow]]\nusers = [\"root\"]\nexe = [\"{}\"]\nshow_memory = true\n",
            parked.display()
        )),
        0o644,
    );
    let audit = env.audit.as_ref().unwrap();
    let target = start_target(&parked, None);
    let out = run(&["dump", "--pid", &target.pid.to_string(), "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(labels_shown(&v), "labels missing: {v}");
    assert!(args_shown(&v), "argument values missing");
    assert!(v["note"].is_null(), "{v}");
    let line = audit.expect(target.pid, "allowed by rule 1 of /etc/gopeek/policy.toml");
    assert!(line.contains("show_memory=true"), "{line}");
    audit.expect(target.pid, "ok: ");
    assert_running_untraced(target.pid);
}

/// A target no rule matches: exit 4, the message names the policy, the
/// refusal is logged, the target is untouched.
#[test]
fn policy_forbids_an_unlisted_target() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let _policy = PolicyGuard::set(Some(&format!("[[allow]]\nusers = [\"{USER}\"]\n")), 0o644);
    let audit = env.audit.as_ref().unwrap();
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let out = run(&["dump", "--pid", &target.pid.to_string()]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no [[allow]] rule of /etc/gopeek/policy.toml matches it"),
        "{}",
        stderr(&out)
    );
    audit.expect(target.pid, "refused: the sudo policy does not allow");
    assert_running_untraced(target.pid);
    // `info --pid` obeys the same policy.
    let out = run(&["info", "--pid", &target.pid.to_string()]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

/// Policies anyone but root could have written, and malformed ones, stop
/// gopeek (exit 4) before it attaches, with a message that says what is
/// wrong.
#[test]
fn unsafe_or_malformed_policy_is_refused() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let audit = env.audit.as_ref().unwrap();
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let pid = target.pid.to_string();
    let ok = format!("[[allow]]\nusers = [\"{TARGET_USER}\"]\n");
    let check = |what: &str, needles: &[&str]| {
        let out = run(&["dump", "--pid", &pid]);
        assert_eq!(out.status.code(), Some(4), "{what}: {}", stderr(&out));
        for n in needles {
            assert!(stderr(&out).contains(n), "{what}: {}", stderr(&out));
        }
        assert!(out.stdout.is_empty(), "{what}");
        assert_running_untraced(target.pid);
    };
    {
        let _p = PolicyGuard::set(Some(&ok), 0o666);
        check(
            "world-writable",
            &["refusing the policy /etc/gopeek/policy.toml: the file is writable by others (mode 0666)"],
        );
    }
    {
        let _p = PolicyGuard::set(Some(&ok), 0o620);
        check(
            "group-writable",
            &["the file is writable by its group (mode 0620)"],
        );
    }
    {
        let _p = PolicyGuard::set(Some(&ok), 0o644);
        std::os::unix::fs::chown(POLICY, Some(env.uid), None).unwrap();
        check(
            "user-owned",
            &[&format!("the file is owned by uid {}, not root", env.uid)],
        );
    }
    {
        let _p = PolicyGuard::set(Some(&ok), 0o644);
        std::fs::set_permissions(POLICY_DIR, std::fs::Permissions::from_mode(0o777)).unwrap();
        check(
            "writable directory",
            &["the directory /etc/gopeek is writable by others (mode 0777)"],
        );
    }
    {
        let _p = PolicyGuard::set(Some(&ok), 0o644);
        std::fs::rename(POLICY, "/etc/gopeek/real.toml").unwrap();
        std::os::unix::fs::symlink("/etc/gopeek/real.toml", POLICY).unwrap();
        check("symlink", &["is a symbolic link"]);
        let _ = std::fs::remove_file("/etc/gopeek/real.toml");
    }
    {
        let _p = PolicyGuard::set(Some("[[allow]]\nusers = [\"gopeektest\"\n"), 0o644);
        check(
            "malformed",
            &["malformed policy /etc/gopeek/policy.toml: TOML parse error at line 2"],
        );
    }
    {
        let _p = PolicyGuard::set(Some("[[allow]]\nuser = [\"gopeektest\"]\n"), 0o644);
        check("unknown key", &["malformed policy", "unknown field `user`"]);
    }
    {
        let _p = PolicyGuard::set(Some("[[allow]]\nshow_memory = true\n"), 0o644);
        check(
            "rule without criteria",
            &["names no users, exe, units or cgroups"],
        );
    }
    // Every refusal reached the log.
    let refusals = audit
        .gopeek_lines()
        .iter()
        .filter(|l| l.contains(&format!(" pid={pid} ")) && l.contains("outcome=\"refused: "))
        .count();
    assert_eq!(refusals, 8, "{:#?}", audit.gopeek_lines());
}

/// Without a system log there is no attach under sudo.
#[test]
fn no_audit_log_means_no_attach() {
    let Some(mut env) = setup() else { return };
    let Some(parked) = parked() else { return };
    if matches!(env.audit, Some(AuditSink::Journal { .. })) {
        eprintln!("note: skipping, a syslog daemon owns /dev/log");
        return;
    }
    env.audit = None; // removes the test's /dev/log listener
    assert!(!Path::new("/dev/log").exists());
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let out = run(&["dump", "--pid", &target.pid.to_string()]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write the audit record to the system log (/dev/log)"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    assert_running_untraced(target.pid);
}

/// After the drop the invoking user may `kill -STOP` gopeek. With the
/// privilege split the hold belongs to the root monitor, which the user
/// cannot signal, and its `--max-pause` deadline releases the target
/// whatever the reader does: gopeek's reader is caught during a hold of a
/// long `leaks` run and stopped; the target must run again within the
/// budget plus a margin, with the reader still stopped.
#[test]
fn stopping_gopeek_after_the_drop_cannot_keep_the_target_stopped() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let target = start_target_with(
        &parked,
        Some((env.target_uid, env.target_gid)),
        &["-extra", "100000"],
    );
    let pid_s = target.pid.to_string();
    let mut child = sudo_gopeek(&[
        "leaks",
        "--pid",
        &pid_s,
        "--samples",
        "200",
        "--interval",
        "10ms",
        "--max-pause",
        "1500",
        "--top",
        "77",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // TracerPid names the tracer *thread*: held when it is the monitor's.
    let held_by = |monitor: i32| {
        let t = status_field(target.pid, "TracerPid");
        t != "0" && Path::new(&format!("/proc/{monitor}/task/{t}")).exists()
    };
    let mut caught = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while caught.is_none() && Instant::now() < deadline {
        assert!(child.try_wait().unwrap().is_none(), "gopeek ended early");
        let Some((reader, monitor)) = split_parts(&format!("--top\0{}", 77), env.uid) else {
            continue;
        };
        if held_by(monitor) {
            // SAFETY: signalling the gopeek process.
            unsafe { libc::kill(reader, libc::SIGSTOP) };
            if held_by(monitor) {
                let sudo_pid: i32 = status_field(reader, "PPid").parse().unwrap_or(0);
                caught = Some((reader, sudo_pid, Instant::now()));
            } else {
                // Released in between: try again.
                // SAFETY: as above.
                unsafe { libc::kill(reader, libc::SIGCONT) };
            }
        }
    }
    let (reader, sudo_pid, stopped_at) = caught.expect("never caught gopeek holding the target");
    let released = common::wait_threads(target.pid, Duration::from_secs(10), "running", |s| {
        s != 't' && s != 'T'
    });
    let still_stopped = status_field(reader, "State").starts_with('T');
    // SAFETY: ending the processes this test started. sudo suspends
    // itself when its command stops: let it (and runuser) go so that they
    // can reap the killed reader.
    unsafe {
        libc::kill(reader, libc::SIGKILL);
        libc::kill(reader, libc::SIGCONT);
        for p in [sudo_pid, child.id() as i32] {
            if p > 0 {
                libc::kill(p, libc::SIGCONT);
            }
        }
    }
    let _ = child.wait();
    let released = released.expect("the target stayed stopped while gopeek was stopped");
    assert!(still_stopped, "the reader was not stopped all along");
    assert!(
        stopped_at.elapsed() >= released && released < Duration::from_millis(4000),
        "released after {released:?}"
    );
    assert_running_untraced(target.pid);
}

/// `gopeek print` shows memory, so under sudo it runs only where the
/// policy says `show_memory = true`: refused (exit 4, logged) under the
/// default policy, allowed by a rule that sets it, and then the value is
/// read after the privilege drop, while the target is held; a
/// goroutine's locals (`--goroutine`) too, equal to root's.
#[test]
fn print_follows_show_memory() {
    let Some(env) = setup() else { return };
    let Some(bin) = common::newest_fixture("default", "printvals") else {
        return;
    };
    let audit = env.audit.as_ref().unwrap();
    let target = start_target(&bin, Some((env.target_uid, env.target_gid)));
    let pid = target.pid.to_string();
    let out = run(&["print", "--pid", &pid, "main.cfg.Addr"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("show_memory = true"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    audit.expect(target.pid, "failed: gopeek print shows the target's memory");
    assert_running_untraced(target.pid);

    let _policy = PolicyGuard::set(
        Some(&format!(
            "[[allow]]\nusers = [\"{TARGET_USER}\"]\nexe = [\"{}\"]\nshow_memory = true\n",
            bin.display()
        )),
        0o644,
    );
    let out = run(&["print", "--pid", &pid, "main.cfg.Addr", "main.vMap1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "main.cfg.Addr = \"localhost:8080\"\nmain.vMap1 = map[string]int{\"one\":1}\n"
    );
    audit.expect(target.pid, "ok: print of 2 expressions");
    assert_running_untraced(target.pid);
    // Read after the drop, while running or under the monitor's hold
    // (--consistent), globals and a goroutine's frame (main's, goroutine
    // 1: its snapshot too) equal root's own print without sudo.
    let globals = &["main.cfg", "main.vMap1", "main.vSlice"][..];
    let frame = &["--goroutine", "1", "--locals"][..];
    for (extra, what) in [
        (&[][..], globals),
        (&["--consistent"][..], globals),
        (&[][..], frame),
        (&["--consistent"][..], frame),
    ] {
        let mut args = vec!["print", "--pid", &pid, "--format", "json"];
        args.extend_from_slice(extra);
        args.extend_from_slice(what);
        let out = run(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let root = std::process::Command::new(support::bin())
            .args(&args)
            .output()
            .unwrap();
        assert!(root.status.success(), "root {args:?}: {}", stderr(&root));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if what == frame {
            assert_eq!(doc["goroutine"], 1, "{doc}");
            assert!(doc["function"].is_string(), "{doc}");
        }
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&root.stdout),
            "{args:?}"
        );
        audit.expect(target.pid, "ok: print of");
        assert_running_untraced(target.pid);
    }
}

/// `threads` and `sched` under sudo follow `dump`'s rules (issue 12): the
/// policy decides before anything is opened, the decision and the outcome
/// are logged, the target is held when root is dropped and ends running
/// and untraced; without `show_memory` (another user's process, default
/// policy) `threads` shows only the registers that locate a thread; a
/// root target is refused.
#[test]
fn threads_and_sched_follow_dumps_rules_under_sudo() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let audit = env.audit.as_ref().unwrap();
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let pid = target.pid.to_string();

    let out = run(&[
        "threads", "--pid", &pid, "--format", "json", "--disasm", "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let threads = v["threads"].as_array().unwrap();
    assert!(!threads.is_empty(), "{v}");
    for t in threads {
        let regs = t["registers"].as_object().unwrap();
        let mut names: Vec<&str> = regs.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["rbp", "rip", "rsp"], "{t}");
        assert_eq!(t["disasm"].as_array().unwrap().len(), 2, "{t}");
    }
    assert!(
        threads.iter().any(|t| t["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["function"].as_str().unwrap_or("").starts_with("runtime."))),
        "no backtrace: {v}"
    );
    assert!(
        stderr(&out).contains("registers other than rip, rsp and rbp are not shown"),
        "{}",
        stderr(&out)
    );
    assert_running_untraced(target.pid);

    let out = run(&["sched", "--pid", &pid, "--detail"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("SCHED ")) && text.contains("  M0:"),
        "{text}"
    );
    assert_running_untraced(target.pid);

    let lines = audit.gopeek_lines();
    let about = |what: &str| {
        lines
            .iter()
            .filter(|l| l.contains(&format!(" pid={pid} ")) && l.contains(what))
            .count()
    };
    assert_eq!(
        about("outcome=\"allowed by default policy"),
        2,
        "{lines:#?}"
    );
    assert_eq!(about("threads="), 1, "threads' outcome: {lines:#?}");
    assert_eq!(about(" ms="), 1, "sched's outcome: {lines:#?}");

    let root_target = start_target(&parked, None);
    for cmd in ["threads", "sched"] {
        let out = run(&[cmd, "--pid", &root_target.pid.to_string()]);
        assert_eq!(out.status.code(), Some(4), "{cmd}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    audit.expect(root_target.pid, "refused: ");
    assert_running_untraced(root_target.pid);
    assert_running_untraced(target.pid);
}

/// The JSON documents of a `--format json` run, one per reading.
fn documents(out: &std::process::Output) -> Vec<serde_json::Value> {
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<serde_json::Value>()
        .map(|d| d.expect("a JSON document"))
        .collect()
}

/// The form of a `gopeek.sched/1` reading, without what moves between two
/// readings of an idle target: its fields in order, the fields of each P
/// and M, the P ids, the Ms' threads and GOMAXPROCS.
fn sched_form(v: &serde_json::Value) -> String {
    let keys = |o: &serde_json::Value| -> Vec<String> {
        o.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let list = |name: &str, id: &str| -> Vec<String> {
        v[name]
            .as_array()
            .unwrap_or_else(|| panic!("no {name} in {v}"))
            .iter()
            .map(|e| format!("{}:{:?}", e[id], keys(e)))
            .collect()
    };
    let mut ms = list("ms", "thread_id");
    ms.sort();
    format!(
        "{:?}\nps {:?}\nms {ms:?}\ngomaxprocs {}\ngc {:?}\nstw {:?}",
        keys(v),
        list("ps", "id"),
        v["gomaxprocs"],
        keys(&v["gc"]),
        keys(&v["stw"])
    )
}

/// `sched --interval 200ms --count 3` under sudo (refused before the root
/// monitor): every reading after the drop, each reading's holds made by
/// the monitor. Three readings, 200 ms apart, each of the same form as
/// root's own run without sudo, read while running and with
/// `--consistent` (every reading then held: a pause); one audit outcome
/// line per run; the target running and untraced after each.
#[test]
fn sched_interval_under_sudo_reads_like_root() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let audit = env.audit.as_ref().unwrap();
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let pid = target.pid.to_string();
    for extra in [&[][..], &["--consistent"][..]] {
        let mut args = vec!["sched", "--pid", &pid, "--format", "json"];
        args.extend(["--interval", "200ms", "--count", "3"]);
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_running_untraced(target.pid);
        let root = std::process::Command::new(bin())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(root.status.code(), Some(0), "root: {}", stderr(&root));
        assert_running_untraced(target.pid);
        let (sudo, root) = (documents(&out), documents(&root));
        assert_eq!(sudo.len(), 3, "{args:?}: {sudo:#?}");
        assert_eq!(root.len(), 3, "root {args:?}: {root:#?}");
        for (i, (s, r)) in sudo.iter().zip(&root).enumerate() {
            assert_eq!(s["schema"], "gopeek.sched/1");
            assert_eq!(s["pid"], target.pid);
            assert_eq!(sched_form(s), sched_form(r), "{args:?}: reading {i}");
            // Held only with --consistent, under sudo as without.
            assert_eq!(s["pause_us"].is_u64(), !extra.is_empty(), "{s}");
            assert_eq!(r["pause_us"].is_u64(), !extra.is_empty(), "{r}");
        }
        let pauses: Vec<_> = sudo.iter().map(|d| d["pause_us"].clone()).collect();
        eprintln!("sched {extra:?} under sudo: pause_us {pauses:?}");
        // Three readings, not one printed three times: the target's own
        // clock moved by the interval between them.
        let up: Vec<i64> = sudo
            .iter()
            .map(|d| d["uptime_ms"].as_i64().unwrap())
            .collect();
        assert!(
            up.windows(2).all(|w| w[1] - w[0] >= 190),
            "{args:?}: uptime_ms {up:?}"
        );
    }
    let lines = audit.gopeek_lines();
    let about = |what: &str| {
        lines
            .iter()
            .filter(|l| l.contains(&format!(" pid={pid} ")) && l.contains(what))
            .count()
    };
    assert_eq!(
        about("outcome=\"allowed by default policy"),
        2,
        "{lines:#?}"
    );
    assert_eq!(about("outcome=\"ok: pause_us="), 2, "{lines:#?}");
}

/// Idle Ms parked in an untimed futex sleep (per gopeek's own backtrace),
/// by tid: a timed sleep (sysmon) may wake between two reads.
fn untimed_futex_threads(j: &serde_json::Value) -> Vec<(i64, serde_json::Value)> {
    j["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            let frames = t["frames"].as_array().cloned().unwrap_or_default();
            let timed = frames
                .iter()
                .any(|f| f["function"].as_str() == Some("runtime.notetsleep_internal"));
            t["frames"][0]["function"].as_str() == Some("runtime.futex")
                && t["state"] == "S"
                && !timed
        })
        .map(|t| (t["tid"].as_i64().unwrap(), t["registers"].clone()))
        .collect()
}

/// `threads` under sudo, where the policy lets memory be shown: the
/// registers come from the root monitor's hold (`RemoteHold`) and equal,
/// register for register, root's own `threads` without sudo for every
/// thread in an untimed futex sleep in both reads (three tries, each
/// compared whole).
#[test]
fn threads_under_sudo_gives_roots_registers() {
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let pid = target.pid.to_string();
    let _policy = PolicyGuard::set(
        Some(&format!(
            "[[allow]]\nusers = [\"{TARGET_USER}\"]\nexe = [\"{}\"]\nshow_memory = true\n",
            parked.display()
        )),
        0o644,
    );
    // Let every idle M reach its sleep.
    std::thread::sleep(Duration::from_millis(300));
    let args = ["threads", "--pid", &pid, "--format", "json"];
    let mut last = String::new();
    for _ in 0..3 {
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stderr(&out).contains("not shown"), "{}", stderr(&out));
        assert_running_untraced(target.pid);
        let root = std::process::Command::new(bin())
            .args(args)
            .output()
            .unwrap();
        assert!(root.status.success(), "root: {}", stderr(&root));
        assert_running_untraced(target.pid);
        let sudo: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let root: serde_json::Value = serde_json::from_slice(&root.stdout).unwrap();
        let (s, r) = (untimed_futex_threads(&sudo), untimed_futex_threads(&root));
        assert!(
            !s.is_empty(),
            "no thread in an untimed futex sleep: {sudo:#}"
        );
        for (_, regs) in &s {
            let n = regs.as_object().map_or(0, |m| m.len());
            #[cfg(target_arch = "x86_64")]
            assert_eq!(n, 26, "every register gdb shows: {regs}");
            assert!(n > 3, "{regs}");
        }
        // The threads asleep in both reads (an idle M may wake to run the
        // fixture's spinner between them, another then sleeps instead).
        let both: Vec<_> = s
            .iter()
            .filter(|(tid, _)| r.iter().any(|(t, _)| t == tid))
            .collect();
        let differ: Vec<_> = both.iter().filter(|x| !r.contains(x)).collect();
        if !both.is_empty() && differ.is_empty() {
            eprintln!(
                "{} futex threads: registers equal to root's read",
                both.len()
            );
            assert_running_untraced(target.pid);
            return;
        }
        last = format!("sudo {differ:?} (of {} in both)\nroot {r:?}", both.len());
    }
    panic!("registers under sudo differ from root's three times:\n{last}");
}

/// After the drop, the reader itself cannot trace or open another
/// process: while `sched --interval` sleeps between its readings, the
/// test runs system calls inside the reader (tests/sudo/inject.rs, as
/// gdb's `call` does; nothing test-only in gopeek). PTRACE_ATTACH and
/// PTRACE_SEIZE fail with EPERM, of the target and of a process of the
/// invoking user itself (which its uid alone allows: without the no-ptrace
/// seccomp filter that SEIZE was measured to return 0), and opening `/proc/PID/mem` of the target, of another
/// process of the target's owner and of init fails with EACCES (the
/// dropped uid), while the same injection's getuid() is the invoking
/// user's and opening /proc/self/status works. The reader then finishes
/// its second reading; every process ends running and untraced.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_reader_cannot_trace_or_open_another_process() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let Some(env) = setup() else { return };
    let Some(parked) = parked() else { return };
    let target = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let other = start_target(&parked, Some((env.target_uid, env.target_gid)));
    let mut own = std::process::Command::new("sleep")
        .arg("300")
        .uid(env.uid)
        .gid(env.gid)
        .spawn()
        .unwrap();
    let own_pid = own.id() as i32;
    let pid_s = target.pid.to_string();
    let mut child = sudo_gopeek(&[
        "sched",
        "--pid",
        &pid_s,
        "--interval",
        "3s",
        "--count",
        "2",
        "--max-pause",
        "1977",
        "--format",
        "json",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("\"gopeek.sched/1\""), "{first}");
    let (reader, _monitor) =
        split_parts("--max-pause\x001977", env.uid).expect("both parts of gopeek");
    // Sleeping until the next reading: in clock_nanosleep.
    let mut inj = None;
    for _ in 0..50 {
        match inject::Injected::attach(reader) {
            Ok(i) => {
                inj = Some(i);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut inj = inj.expect("the reader never sleeping in a system call");
    let mut results = Vec::new();
    // The paths first (`put` needs `inj` mutably), then the calls.
    let paths: Vec<(String, u64)> = [
        format!("/proc/{}/mem", target.pid),
        format!("/proc/{}/mem", other.pid),
        "/proc/1/mem".to_string(),
        "/proc/self/status".to_string(),
    ]
    .into_iter()
    .map(|p| {
        let a = inj.put(p.as_bytes()).unwrap();
        (p, a)
    })
    .collect();
    let sys = |nr: i64, a: [u64; 4]| inj.syscall(nr, a).unwrap();
    let uid = sys(libc::SYS_getuid, [0; 4]);
    for (req, name) in [
        (libc::PTRACE_ATTACH, "ATTACH"),
        (libc::PTRACE_SEIZE, "SEIZE"),
    ] {
        for (who, p) in [("own", own_pid), ("target", target.pid)] {
            let r = sys(libc::SYS_ptrace, [req as u64, p as u64, 0, 0]);
            results.push((format!("ptrace {name} of the {who} process {p}"), r));
        }
    }
    let mut opened = Vec::new();
    for (p, a) in &paths {
        let at = libc::AT_FDCWD as i64 as u64;
        let r = sys(libc::SYS_openat, [at, *a, libc::O_RDONLY as u64, 0]);
        if r >= 0 {
            opened.push(r);
        }
        results.push((format!("open {p}"), r));
    }
    for fd in opened {
        sys(libc::SYS_close, [fd as u64, 0, 0, 0]);
    }
    inj.detach().unwrap();
    // The reader goes on: its second reading, then exit 0.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let own_tracer = status_field(own_pid, "TracerPid");
    // SAFETY: ending the process this test started.
    unsafe { libc::kill(own_pid, libc::SIGKILL) };
    let _ = own.wait();
    for p in [target.pid, other.pid] {
        assert_running_untraced(p);
    }
    eprintln!("inside the reader: getuid() = {uid}; {results:?}");
    assert_eq!(
        uid, env.uid as i64,
        "the injection did not run in the reader"
    );
    let eperm = -(libc::EPERM as i64);
    let eacces = -(libc::EACCES as i64);
    for (what, r) in &results {
        let want = if what.starts_with("ptrace") {
            eperm
        } else if what.ends_with("/status") {
            assert!(*r >= 0, "{what}: {r}");
            continue;
        } else {
            eacces
        };
        assert_eq!(*r, want, "{what}");
    }
    assert!(status.success(), "the reader failed after the injection");
    assert!(
        rest.contains("\"gopeek.sched/1\""),
        "no second reading: {rest}"
    );
    assert_eq!(own_tracer, "0", "the invoking user's process was traced");
}
