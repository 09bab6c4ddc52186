//! `gopeek record` as a user meets it beyond the happy path, on the
//! `cpuburn` fixture (Go 1.27, default build): the other output formats
//! (speedscope, folded, SVG) and the faults: gopeek killed mid-record
//! (the target keeps running, untraced), and a target that exits
//! mid-record (a profile of what was sampled, and a message), and an
//! environment that refuses perf events (a seccomp filter on gopeek, as a
//! container's default profile does): gopeek falls back to ptrace.

mod common;

use common::*;
use std::process::Stdio;
use std::time::Duration;

fn target() -> Option<Running> {
    let bin = fixture("1.27", "default", "cpuburn")?;
    Some(
        Launch::new(&bin)
            .envs(&[("GOMAXPROCS", "1")])
            .kill_with_test()
            .start(),
    )
}

fn record(pid: i32, args: &[&str]) -> (Vec<u8>, String) {
    let out = gopeek()
        .args(["record", "--pid", &pid.to_string()])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "gopeek record {args:?}: {stderr}");
    (out.stdout, stderr)
}

#[test]
fn speedscope_folded_and_svg() {
    let Some(run) = target() else { return };
    let (folded, stderr) = record(run.pid, &["--duration", "1s", "--format", "folded"]);
    let folded = String::from_utf8(folded).unwrap();
    let mut total = 0u64;
    for l in folded.lines() {
        let (stack, n) = l.rsplit_once(' ').unwrap();
        total += n.parse::<u64>().unwrap();
        assert!(!stack.is_empty());
    }
    assert!(
        folded
            .lines()
            .any(|l| l.starts_with("main.main.func1;") && l.contains(";main.burnB;main.mixB ")),
        "{folded}"
    );
    assert!(
        stderr.contains(&format!("{total} samples")),
        "{stderr}\n{folded}"
    );

    let (ss, _) = record(
        run.pid,
        &[
            "--duration",
            "1s",
            "--format",
            "speedscope",
            "--rate",
            "200",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&ss).unwrap();
    assert_eq!(
        v["$schema"],
        "https://www.speedscope.app/file-format-schema.json"
    );
    let p = &v["profiles"][0];
    assert_eq!(p["type"], "sampled");
    assert_eq!(p["unit"], "nanoseconds");
    let frames = v["shared"]["frames"].as_array().unwrap();
    let weights = p["weights"].as_array().unwrap();
    let samples = p["samples"].as_array().unwrap();
    assert_eq!(weights.len(), samples.len());
    let sum: u64 = weights.iter().map(|w| w.as_u64().unwrap()).sum();
    assert_eq!(p["endValue"].as_u64().unwrap(), sum);
    // Every weight is a whole number of 5 ms periods (200 Hz).
    assert!(weights.iter().all(|w| w.as_u64().unwrap() % 5_000_000 == 0));
    // Stacks are root first: burnA's stacks start at the goroutine's
    // function and end in burnA.
    let name = |i: &serde_json::Value| {
        frames[i.as_u64().unwrap() as usize]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a = samples
        .iter()
        .map(|s| s.as_array().unwrap().iter().map(name).collect::<Vec<_>>())
        .find(|s| s.last().is_some_and(|l| l == "main.burnA"))
        .expect("a sample in main.burnA");
    assert_eq!(a[0], "main.main.func1", "{a:?}");

    let (svg, _) = record(run.pid, &["--duration", "1s", "--format", "svg"]);
    let svg = String::from_utf8(svg).unwrap();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&svg, opts).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(svg.contains("main.burnA"));
    assert_running_untraced(run.pid);
}

#[test]
fn pprof_to_a_pipe_is_a_gzipped_profile() {
    let Some(run) = target() else { return };
    // stdout is a pipe here: allowed.
    let (pb, _) = record(run.pid, &["--duration", "300ms"]);
    assert_eq!(&pb[..2], &[0x1f, 0x8b], "a gzipped profile");
}

#[test]
fn sigkill_of_gopeek_mid_record_leaves_the_target_running_untraced() {
    let Some(run) = target() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut child = gopeek()
        .args([
            "record",
            "--pid",
            &run.pid.to_string(),
            "--duration",
            "60s",
            "-o",
        ])
        .arg(dir.path().join("p.pprof"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    kill(child.id() as i32, libc::SIGKILL).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(libc::SIGKILL)
    );
    assert_running_untraced(run.pid);
    // And it keeps running: its threads use CPU after gopeek is gone.
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", run.pid)).unwrap();
        let f: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let before = cpu();
    assert!(wait_until(Duration::from_secs(10), || cpu() > before));
}

#[test]
fn target_exiting_mid_record_gives_what_was_sampled() {
    let Some(run) = target() else { return };
    let pid = run.pid;
    let child = gopeek()
        .args([
            "record",
            "--pid",
            &pid.to_string(),
            "--duration",
            "60s",
            "--format",
            "folded",
        ])
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
    assert!(folded.contains("main.burnA"), "{folded}");
}

/// Installs, in the child before exec, a seccomp filter that fails
/// `perf_event_open` with EPERM (what Docker's default profile does).
fn refuse_perf_events(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7;
    let nr = libc::SYS_perf_event_open as u32;
    let f = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let prog = [
        f(0x20, 0, 0, 4),                                // ld arch
        f(0x15, 0, 3, ARCH),                             // jeq ARCH ? next : allow
        f(0x20, 0, 0, 0),                                // ld nr
        f(0x15, 0, 1, nr),                               // jeq perf_event_open ? next : allow
        f(0x06, 0, 0, 0x0005_0000 | libc::EPERM as u32), // ret ERRNO(EPERM)
        f(0x06, 0, 0, 0x7fff_0000),                      // ret ALLOW
    ];
    // SAFETY: prctl and seccomp with a program that lives until exec; both
    // are async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(libc::SYS_seccomp, 1, 0, &fprog as *const libc::sock_fprog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn refused_perf_events_fall_back_to_ptrace() {
    let Some(run) = target() else { return };
    let mut cmd = gopeek();
    cmd.args([
        "record",
        "--pid",
        &run.pid.to_string(),
        "--duration",
        "1s",
        "--format",
        "folded",
    ]);
    refuse_perf_events(&mut cmd);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("perf_event_open was refused"), "{stderr}");
    assert!(
        stderr.contains("falling back to --backend ptrace"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("main.burnA"));
    assert_running_untraced(run.pid);
    // Named explicitly, perf does not fall back: exit 4 and what to do.
    let mut cmd = gopeek();
    cmd.args([
        "record",
        "--pid",
        &run.pid.to_string(),
        "--duration",
        "1s",
        "--backend",
        "perf",
    ]);
    cmd.args(["--format", "folded"]);
    refuse_perf_events(&mut cmd);
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--backend ptrace"));
}
