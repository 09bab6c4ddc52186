//! Live tests of `gopeek::process` against real processes.
//!
//! Targets: `tests/targets/heartbeat` (Go, stdlib only: prints `beat=N
//! usr1=M` every 20 ms and keeps several threads busy) and
//! `tests/targets/sigcount.c` (C: counts queued real-time signals exactly).
//! Both are built on first use under `target/tmp/` (`common::test_target`)
//! and started by `common::Launch`.
//!
//! Needs Linux, permission to ptrace children (root or CAP_SYS_PTRACE, or
//! Yama ptrace_scope <= 1), a C compiler and a Go toolchain
//! (`/usr/lib/go-1.27/bin/go`, or set `GOPEEK_TEST_GO`).
//!
//! Some checks must happen in another process (a seccomp filter cannot be
//! removed; killing the tracer must not kill the test). For those the test
//! binary re-runs itself: `helper_entry` does nothing in a normal run, and
//! runs a helper mode when `GOPEEK_PROCESS_TEST_HELPER` is set.
//!
//! Helpers: tests/process_attach/support.rs (the heartbeat target, thread
//! states through gopeek's proc_fs) and tests/process_attach/helpers.rs
//! (the helper modes); the shared harness is tests/common.

mod common;
#[path = "process_attach/helpers.rs"]
mod helpers;
#[path = "process_attach/support.rs"]
mod support;

use gopeek::binary::elf::GoBinary;
use gopeek::memory::{Memory, MemoryExt};
use gopeek::process::proc_fs::{self, ProcStatus};
use gopeek::process::{LiveMemory, ProcessError, SeizeOptions, SeizedProcess, StopKind};
use helpers::Helper;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// Entry point of helper processes; a no-op in a normal test run.
#[test]
fn helper_entry() {
    helpers::entry();
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn seize_stops_every_thread_reads_memory_and_detach_resumes() {
    let t = Target::start(&heartbeat(), &[]);
    assert!(t.runs());
    let s = SeizedProcess::seize(t.pid, &opts()).expect("seize");
    assert_eq!(s.pid(), t.pid);
    let mut ours: Vec<i32> = s.threads().iter().map(|th| th.tid).collect();
    ours.sort_unstable();
    let states = thread_states(t.pid);
    let listed: Vec<i32> = states.iter().map(|&(tid, _)| tid).collect();
    assert_eq!(ours, listed, "every thread of the target is held");
    assert!(
        states.iter().all(|&(_, s)| s == 't'),
        "all threads in tracing stop: {states:?}"
    );
    assert!(
        ours.len() >= 3,
        "a Go program has several threads: {ours:?}"
    );
    for th in s.threads() {
        assert_ne!(th.regs.pc(), 0, "{th:?}");
        assert_ne!(th.regs.sp(), 0, "{th:?}");
        #[cfg(target_arch = "x86_64")]
        assert_ne!(
            th.regs.tls_base(),
            0,
            "Go sets fs_base on every thread: {th:?}"
        );
        // Go's own preemption signal (SIGURG) may be in delivery when the
        // thread stops; it is then handed back on detach.
        assert!(
            th.stop == StopKind::Interrupt || matches!(th.stop, StopKind::SignalDelivery { .. }),
            "{th:?}"
        );
        assert!(matches!(th.state_before, 'R' | 'S' | 'D'), "{th:?}");
    }
    assert!(s.thread(t.pid).is_some());
    // A thread id names its whole process.
    let other = *ours
        .iter()
        .find(|&&tid| tid != t.pid)
        .expect("a second thread");
    match SeizedProcess::seize(other, &opts()) {
        Err(ProcessError::AlreadyTraced { pid, tracer, .. }) => {
            assert_eq!((pid, tracer), (t.pid, std::process::id() as i32));
        }
        r => panic!("expected AlreadyTraced by ourselves, got {r:?}"),
    }
    assert!(proc_fs::tracer_pid(t.pid).unwrap().is_some());
    // Held: no heartbeat.
    let before = t.counters().0;
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        t.counters().0 <= before + 1,
        "the target must not run while held"
    );

    // Memory: the ELF header where the executable is mapped, single and batched.
    let mem = LiveMemory::new(t.pid);
    let base = elf_header_address(t.pid);
    let mut magic = [0u8; 4];
    mem.read_at(base, &mut magic).expect("read ELF header");
    assert_eq!(&magic, b"\x7fELF");
    let mut a = [0u8; 16];
    let mut bad = [0u8; 8];
    let mut c = [0u8; 2];
    let mut reqs: Vec<(u64, &mut [u8])> = vec![(base, &mut a), (8, &mut bad), (base + 16, &mut c)];
    let r = mem.read_batch(&mut reqs);
    assert!(r[0].is_ok() && r[1].is_err() && r[2].is_ok(), "{r:?}");
    assert_eq!(&a[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes(c), 2, "e_type ET_EXEC");
    assert_eq!(mem.read_u32(base).unwrap(), u32::from_le_bytes(*b"\x7fELF"));
    assert!(s.check_budget().is_ok());

    let stats = s.detach();
    assert_eq!(stats.threads, ours.len());
    assert!(
        stats.pause >= Duration::from_millis(100) && stats.pause < Duration::from_secs(5),
        "{stats:?}"
    );
    assert!(!stats.budget_exceeded);
    assert!(
        wait_released(t.pid),
        "after detach: {:?}",
        thread_states(t.pid)
    );
    assert!(!thread_states(t.pid).iter().any(|&(_, s)| s == 'T'));
    assert_eq!(proc_fs::tracer_pid(t.pid).unwrap(), None);
    assert!(t.runs(), "heartbeat resumes after detach");
}

#[test]
fn load_bias_matches_the_mapped_text_for_pie_and_non_pie() {
    for (bin, pie) in [(heartbeat(), false), (heartbeat_pie(), true)] {
        let t = Target::start(&bin, &[]);
        let exe =
            GoBinary::open(&proc_fs::exe_open_path(t.pid)).expect("open exe via /proc/PID/exe");
        assert_eq!(exe.is_position_independent(), pie);
        let bias = proc_fs::load_bias(t.pid, &exe).expect("load bias");
        if pie {
            assert_ne!(bias, 0);
            assert_eq!(bias & 0xfff, 0);
        } else {
            assert_eq!(bias, 0);
        }
        let text = exe
            .segments()
            .iter()
            .find(|s| s.executable)
            .expect("text segment")
            .clone();
        let want = exe
            .slice_at_vaddr(text.vaddr + 0x100, 256)
            .expect("file text");
        let mut got = vec![0u8; 256];
        LiveMemory::new(t.pid)
            .read_at(text.vaddr + 0x100 + bias, &mut got)
            .expect("read live text");
        assert_eq!(
            got, want,
            "pie={pie}: live text at link address + bias equals the file"
        );
        assert!(proc_fs::exe_path(t.pid).unwrap().ends_with(if pie {
            "heartbeat-pie"
        } else {
            "heartbeat"
        }));
    }
}

#[test]
fn target_stopped_before_stays_stopped_after_detach() {
    let t = Target::start(&heartbeat(), &[]);
    kill(t.pid, libc::SIGSTOP);
    assert!(
        wait_until(Duration::from_secs(10), || all_in_state(t.pid, 'T')),
        "{:?}",
        thread_states(t.pid)
    );
    let s = SeizedProcess::seize(t.pid, &opts()).expect("seize a stopped process");
    for th in s.threads() {
        assert_eq!(th.state_before, 'T');
        assert_eq!(
            th.stop,
            StopKind::GroupStop {
                signal: libc::SIGSTOP
            },
            "{th:?}"
        );
        assert_ne!(th.regs.pc(), 0);
    }
    assert!(all_in_state(t.pid, 't'));
    let stats = s.detach();
    assert!(stats.threads > 0);
    // Back in the group-stop, untraced; it must not run.
    assert!(
        wait_until(Duration::from_secs(10), || all_in_state(t.pid, 'T')
            && released(t.pid)),
        "{:?}",
        thread_states(t.pid)
    );
    let before = t.counters().0;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(t.counters().0, before, "still stopped");
    kill(t.pid, libc::SIGCONT);
    assert!(t.runs(), "runs after SIGCONT");
}

#[test]
fn killed_or_signalled_tracer_leaves_target_running() {
    let t = Target::start(&heartbeat(), &[]);
    for (sig, env) in [
        (libc::SIGKILL, None),
        (libc::SIGINT, None),
        (libc::SIGTERM, None),
        (libc::SIGHUP, None),
        (libc::SIGPIPE, Some(("GOPEEK_TEST_SIGPIPE", "default"))),
    ] {
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let mut h = Helper::start("hold", t.pid, &env);
        h.expect("READY", Duration::from_secs(60));
        assert!(
            all_in_state(t.pid, 't'),
            "held by the helper: {:?}",
            thread_states(t.pid)
        );
        let tracer = proc_fs::tracer_pid(t.pid).unwrap().expect("traced");
        assert_eq!(
            ProcStatus::read(tracer).unwrap().tgid,
            h.pid(),
            "TracerPid is the helper's tracer thread"
        );
        kill(h.pid(), sig);
        let st = h.wait_exit(Duration::from_secs(10)).expect("helper dies");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(sig), "helper killed by signal {sig}");
        assert!(
            wait_released(t.pid),
            "signal {sig}: target released: {:?}",
            thread_states(t.pid)
        );
        assert!(t.runs(), "signal {sig}: heartbeat resumes");
    }

    // SIGPIPE as Rust leaves it (ignored): the holder carries on and detaches normally.
    let mut h = Helper::start("hold", t.pid, &[("GOPEEK_TEST_HOLD_MS", "800")]);
    h.expect("READY", Duration::from_secs(60));
    kill(h.pid(), libc::SIGPIPE);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        all_in_state(t.pid, 't'),
        "still held after an ignored SIGPIPE"
    );
    h.expect("DETACHED", Duration::from_secs(10));
    assert!(h
        .wait_exit(Duration::from_secs(10))
        .expect("helper exits")
        .success());
    assert!(wait_released(t.pid));
    assert!(t.runs());
}

#[test]
fn killed_tracer_leaves_a_stopped_target_stopped() {
    let t = Target::start(&heartbeat(), &[]);
    kill(t.pid, libc::SIGSTOP);
    assert!(wait_until(Duration::from_secs(10), || all_in_state(
        t.pid, 'T'
    )));
    let mut h = Helper::start("hold", t.pid, &[]);
    h.expect("READY", Duration::from_secs(60));
    assert!(all_in_state(t.pid, 't'));
    kill(h.pid(), libc::SIGKILL);
    h.wait_exit(Duration::from_secs(10)).expect("helper dies");
    assert!(
        wait_until(Duration::from_secs(10), || all_in_state(t.pid, 'T')
            && released(t.pid)),
        "{:?}",
        thread_states(t.pid)
    );
    kill(t.pid, libc::SIGCONT);
    assert!(t.runs());
}

#[test]
fn ctrl_z_of_the_tracer_takes_effect_after_detach() {
    let t = Target::start(&heartbeat(), &[]);
    let mut h = Helper::start(
        "hold",
        t.pid,
        &[("GOPEEK_TEST_DEFER", "1"), ("GOPEEK_TEST_HOLD_MS", "700")],
    );
    h.expect("READY", Duration::from_secs(60));
    kill(h.pid(), libc::SIGTSTP);
    std::thread::sleep(Duration::from_millis(200));
    assert_ne!(
        proc_fs::process_state(h.pid()).unwrap(),
        'T',
        "the helper must not stop while it holds the target"
    );
    assert!(all_in_state(t.pid, 't'));
    // After its hold the helper detaches, then stops as asked.
    assert!(
        wait_until(Duration::from_secs(10), || proc_fs::process_state(h.pid())
            .ok()
            == Some('T')),
        "helper stops after detaching"
    );
    assert!(wait_released(t.pid));
    assert!(t.runs(), "the target runs while the helper is stopped");
    kill(h.pid(), libc::SIGCONT);
    h.expect("DETACHED", Duration::from_secs(10));
    assert!(h
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .success());
}

#[test]
fn signals_arriving_while_seizing_are_never_swallowed() {
    let t = Target::start(&sigcount(), &[]);
    let sig = libc::SIGRTMIN() + 2;
    const N: u64 = 3000;
    let pid = t.pid;
    let spammer = std::thread::spawn(move || {
        for i in 0..N {
            kill(pid, sig);
            if i % 4 == 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    });
    let (mut cycles, mut reinjected) = (0usize, 0usize);
    while !spammer.is_finished() {
        let s = SeizedProcess::seize(t.pid, &opts()).expect("seize");
        reinjected += s
            .threads()
            .iter()
            .filter(|th| matches!(th.stop, StopKind::SignalDelivery { .. }))
            .count();
        let st = s.detach();
        assert_eq!(st.detach_errors, 0);
        cycles += 1;
    }
    spammer.join().unwrap();
    let all = t.wait_for(|c| c.1 >= N, Duration::from_secs(20));
    println!("{cycles} seize cycles while {N} signals were sent; {reinjected} signal-delivery-stops re-injected");
    assert!(all, "received {} of {N} signals", t.counters().1);
    assert_eq!(t.counters().1, N, "no signal lost, none duplicated");
    assert!(wait_released(t.pid));
}

#[test]
fn target_exiting_while_held_or_attaching_never_hangs() {
    // Killed while held: detach still returns, reads fail cleanly.
    let t = Target::start(&heartbeat(), &[]);
    let s = SeizedProcess::seize(t.pid, &opts()).expect("seize");
    kill(t.pid, libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let stats = s.detach();
    assert!(started.elapsed() < Duration::from_secs(2), "{stats:?}");
    let mut b = [0u8; 4];
    let base = 0x400000;
    assert!(LiveMemory::new(t.pid).read_at(base, &mut b).is_err());
    drop(t);

    // Exiting on its own at varying moments, seized over and over from
    // the moment it was started (while the Go runtime creates its threads)
    // until it is gone.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut ok, mut exited) = (0, 0);
    for round in 0..12u64 {
        let t = Target::spawn(
            &heartbeat(),
            &["-exit-after", &format!("{}ms", 20 + round * 10)],
        );
        loop {
            assert!(Instant::now() < deadline, "exit race took too long");
            match SeizedProcess::seize(t.pid, &opts()) {
                Ok(s) => {
                    drop(s);
                    ok += 1;
                }
                Err(
                    ProcessError::Exited { .. }
                    | ProcessError::NoSuchProcess { .. }
                    | ProcessError::Zombie { .. },
                ) => {
                    exited += 1;
                    break;
                }
                Err(e) => panic!("unexpected error while the target exits: {e}"),
            }
        }
    }
    println!("exit race: {ok} successful seizes, {exited} clean 'exited' results");
}

#[test]
fn thread_churn_every_thread_is_caught() {
    let t = Target::start(&heartbeat(), &["-churn"]);
    let mut rescans = 0;
    let mut vanished = 0;
    for _ in 0..100 {
        let s = SeizedProcess::seize(t.pid, &opts()).expect("seize a churning process");
        let held: Vec<i32> = s.threads().iter().map(|th| th.tid).collect();
        for (tid, state) in thread_states(t.pid) {
            assert!(
                held.contains(&tid) || matches!(state, 'Z' | 'X'),
                "thread {tid} ({state}) escaped; held {held:?}"
            );
            if held.contains(&tid) {
                assert_eq!(state, 't', "thread {tid}");
            }
        }
        let st = s.detach();
        rescans += st.rescans;
        vanished += st.vanished;
    }
    println!("churn: {rescans} rescans, {vanished} threads vanished mid-attach over 100 cycles");
    assert!(wait_released(t.pid));
    assert!(t.runs());
}

#[test]
fn clear_errors_for_bad_targets() {
    let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(i32::MAX - 1);
    for pid in [pid_max + 1, 0, -5] {
        let e = SeizedProcess::seize(pid, &opts()).unwrap_err();
        assert!(matches!(e, ProcessError::NoSuchProcess { .. }), "{e:?}");
        assert!(e.to_string().starts_with("no such process"), "{e}");
    }
    let e = SeizedProcess::seize(std::process::id() as i32, &opts()).unwrap_err();
    assert!(matches!(e, ProcessError::SelfAttach { .. }), "{e:?}");

    // A zombie: a child that exited and is not reaped yet.
    let mut z = Command::new("true").spawn().expect("spawn true");
    let zp = z.id() as i32;
    assert!(wait_until(Duration::from_secs(10), || proc_fs::is_zombie(
        zp
    )
    .unwrap_or(false)));
    let e = SeizedProcess::seize(zp, &opts()).unwrap_err();
    assert!(matches!(e, ProcessError::Zombie { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&format!(
            "process {zp} is a zombie (exited, not yet reaped)"
        )),
        "{e}"
    );
    z.wait().unwrap();

    // Already traced by another process: name it.
    let t = Target::start(&heartbeat(), &[]);
    let mut h = Helper::start("hold", t.pid, &[]);
    h.expect("READY", Duration::from_secs(60));
    let e = SeizedProcess::seize(t.pid, &opts()).unwrap_err();
    match &e {
        ProcessError::AlreadyTraced {
            tracer,
            tracer_comm,
            ..
        } => {
            assert_eq!(*tracer, h.pid());
            assert_eq!(*tracer_comm, proc_fs::comm(h.pid()).unwrap());
        }
        other => panic!("expected AlreadyTraced, got {other:?}"),
    }
    assert!(
        e.to_string()
            .contains(&format!("already traced by PID {}", h.pid())),
        "{e}"
    );
    drop(h);
    assert!(wait_released(t.pid));

    // Budget: a zero budget cannot even finish stopping; nothing stays held.
    let o = SeizeOptions {
        max_pause: Duration::ZERO,
        ..SeizeOptions::default()
    };
    match SeizedProcess::seize(t.pid, &o) {
        Err(e @ ProcessError::PauseBudgetExceeded { .. }) => {
            assert!(e.to_string().contains("--max-pause"), "{e}")
        }
        other => panic!("expected PauseBudgetExceeded, got {other:?}"),
    }
    assert!(wait_released(t.pid), "{:?}", thread_states(t.pid));
    assert!(t.runs());
}

#[test]
fn pause_budget_releases_a_target_the_caller_holds_too_long() {
    let t = Target::start(&heartbeat(), &[]);
    let o = SeizeOptions {
        max_pause: Duration::from_millis(150),
        ..SeizeOptions::default()
    };
    let s = SeizedProcess::seize(t.pid, &o).expect("seize");
    assert!(s.check_budget().is_ok());
    // The caller "forgets" to detach; the tracer lets go at the deadline.
    assert!(wait_released(t.pid), "released at the deadline");
    let e = s.check_budget().unwrap_err();
    assert!(
        matches!(e, ProcessError::PauseBudgetExceeded { .. }),
        "{e:?}"
    );
    let st = s.detach();
    assert!(st.budget_exceeded, "{st:?}");
    assert!(
        st.pause >= Duration::from_millis(150) && st.pause < Duration::from_secs(2),
        "{st:?}"
    );
    assert!(t.runs());
}

#[test]
fn two_hundred_seize_detach_cycles() {
    let t = Target::start(&heartbeat(), &[]);
    let mem = LiveMemory::new(t.pid);
    let base = elf_header_address(t.pid);
    let beat0 = t.counters().0;
    let started = Instant::now();
    let mut pauses = Vec::with_capacity(200);
    let mut stops = Vec::with_capacity(200);
    let mut threads = 0;
    for i in 0..200 {
        let s = SeizedProcess::seize(t.pid, &opts()).expect("seize");
        threads = s.threads().len();
        let mut b = [0u8; 4];
        mem.read_at(base, &mut b).expect("read");
        assert_eq!(&b, b"\x7fELF");
        let st = s.detach();
        assert_eq!(st.threads, threads);
        pauses.push(st.pause_us());
        stops.push(st.stop_latency.as_micros() as u64);
        if i % 50 == 0 {
            assert!(wait_released(t.pid));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = started.elapsed();
    assert!(wait_released(t.pid), "{:?}", thread_states(t.pid));
    assert!(!thread_states(t.pid)
        .iter()
        .any(|&(_, s)| s == 'T' || s == 't'));
    assert!(t.runs());
    assert!(
        t.counters().0 > beat0 + elapsed.as_millis() as u64 / 20 / 3,
        "heartbeat advanced during the cycles"
    );
    pauses.sort_unstable();
    let median = pauses[pauses.len() / 2];
    let p90 = pauses[pauses.len() * 9 / 10];
    let max = *pauses.last().unwrap();
    stops.sort_unstable();
    println!(
        "200 cycles, {threads} threads: pause median {median} us, p90 {p90} us, max {max} us; \
         stop latency median {} us, max {} us",
        stops[stops.len() / 2],
        stops[stops.len() - 1]
    );
    assert!(median < 50_000, "median pause {median} us");
}

#[test]
fn seccomp_filters_refuse_writes_and_keep_reads() {
    let t = Target::start(&heartbeat(), &[]);
    let mut h = Helper::start("seccomp", t.pid, &[]);
    let st = h
        .wait_exit(Duration::from_secs(120))
        .expect("helper finishes");
    let out = h.output();
    assert!(st.success(), "seccomp helper failed: {out:#?}");
    for l in &out {
        println!("{l}");
    }
    assert!(
        out.iter().any(|l| l.ends_with("DONE failures=0")),
        "{out:#?}"
    );
    assert!(wait_released(t.pid));
    assert!(t.runs());
}

#[test]
fn reads_survive_dropping_privileges_and_eperm_is_explained() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root to drop privileges");
        return;
    }
    let t = Target::start(&heartbeat(), &[]);
    let mut h = Helper::start("drop-privs", t.pid, &[]);
    let st = h
        .wait_exit(Duration::from_secs(60))
        .expect("helper finishes");
    let out = h.output();
    assert!(st.success(), "drop-privs helper failed: {out:#?}");
    assert!(released(t.pid));
}

#[test]
fn termination_signals_have_no_handlers() {
    // The design relies on default (or ignored) dispositions; see signals.rs.
    assert!(gopeek::process::signals::termination_signals_with_handlers().is_empty());
}

#[test]
fn panic_while_held_releases_the_target_during_unwinding() {
    let t = Target::start(&heartbeat(), &[]);
    let pid = t.pid;
    let r = std::panic::catch_unwind(move || {
        let _s = SeizedProcess::seize(pid, &opts()).expect("seize");
        assert!(all_in_state(pid, 't'));
        panic!("a bug while the target is held");
    });
    assert!(r.is_err());
    // Released by Drop during unwinding, while this process lives on.
    assert!(released(t.pid) || wait_released(t.pid));
    assert!(t.runs());
}

#[test]
fn seized_process_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<SeizedProcess>();
    let t = Target::start(&heartbeat(), &[]);
    let s = SeizedProcess::seize(t.pid, &opts()).expect("seize");
    // Detached from another thread than the one that seized.
    let stats = std::thread::spawn(move || s.detach()).join().unwrap();
    assert!(stats.threads > 0 && stats.detach_errors == 0, "{stats:?}");
    assert!(wait_released(t.pid));
    assert!(t.runs());
}

#[test]
fn deleted_executable_is_still_found_and_read() {
    let copy = tmpdir().join(format!("heartbeat-deleted-{}", std::process::id()));
    std::fs::copy(heartbeat_pie(), &copy).expect("copy target");
    let t = Target::start(&copy, &[]);
    std::fs::remove_file(&copy).expect("delete the running executable");
    let shown = proc_fs::exe_path(t.pid).unwrap();
    assert!(shown.to_string_lossy().ends_with(" (deleted)"), "{shown:?}");
    // Matched by device and inode, opened through /proc/PID/exe.
    let exe = GoBinary::open(&proc_fs::exe_open_path(t.pid))
        .expect("open a deleted exe via /proc/PID/exe");
    let m = proc_fs::exe_mapping(t.pid).expect("mapping of a deleted exe");
    assert!(m.path.ends_with(" (deleted)"), "{m:?}");
    let bias = proc_fs::load_bias(t.pid, &exe).expect("bias");
    assert_eq!(m.start, exe.lowest_load_address().unwrap() + bias);
    let mut hdr = [0u8; 4];
    LiveMemory::new(t.pid).read_at(m.start, &mut hdr).unwrap();
    assert_eq!(&hdr, b"\x7fELF");
}
