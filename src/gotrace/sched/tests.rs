//! The text rules against lines the runtime itself printed
//! (`../shared/go-runtime/sched.md` §1.2, measured with
//! `GODEBUG=schedtrace=1000[,scheddetail=1]`).

use super::*;

fn p(id: i32, status: u32, schedtick: u32, syscalltick: u32, m: Option<i64>) -> PState {
    PState {
        id,
        status,
        schedtick,
        syscalltick,
        m,
        ..PState::default()
    }
}

fn m(id: i64, p: Option<i32>, curg: Option<u64>, blocked: bool) -> MState {
    MState {
        id,
        p,
        curg,
        blocked,
        ..MState::default()
    }
}

fn g(goid: u64, status: u32, reason: &str, m: Option<i64>) -> GState {
    GState {
        goid,
        status,
        waitreason: reason.to_string(),
        m,
        ..GState::default()
    }
}

fn short(minor: u32, runq: [u32; 2], ticks: [u32; 2]) -> SchedState {
    SchedState {
        go_minor: minor,
        gomaxprocs: 2,
        threads: 3,
        spinningthreads: 1,
        needspinning: Some(0),
        ps: (0..2)
            .map(|i| PState {
                id: i as i32,
                runqsize: runq[i],
                schedtick: ticks[i],
                ..PState::default()
            })
            .collect(),
        ..SchedState::default()
    }
}

#[test]
fn short_lines_per_version() {
    assert_eq!(
        schedtrace_text(&short(19, [0, 0], [0, 0]), false),
        "SCHED 0ms: gomaxprocs=2 idleprocs=0 threads=3 spinningthreads=1 idlethreads=0 runqueue=0 [0 0]\n"
    );
    assert_eq!(
        schedtrace_text(&short(21, [2, 0], [0, 0]), false),
        "SCHED 0ms: gomaxprocs=2 idleprocs=0 threads=3 spinningthreads=1 needspinning=0 idlethreads=0 runqueue=0 [2 0]\n"
    );
    let mut s = short(25, [0, 0], [0, 2]);
    s.idleprocs = 1;
    s.threads = 4;
    s.spinningthreads = 0;
    s.idlethreads = 2;
    assert_eq!(
        schedtrace_text(&s, false),
        "SCHED 0ms: gomaxprocs=2 idleprocs=1 threads=4 spinningthreads=0 needspinning=0 idlethreads=2 runqueue=0 [ 0 0 ] schedticks=[ 0 2 ]\n"
    );
}

/// The stuck-STW block of §1.2 (1.27), and the same state in 1.19's words.
fn stuck(minor: u32) -> SchedState {
    SchedState {
        go_minor: minor,
        uptime_ms: 2806,
        gomaxprocs: 2,
        threads: 5,
        needspinning: Some(1),
        idlethreads: 2,
        gcwaiting: true,
        stopwait: 1,
        ps: vec![p(0, 1, 1, 1, Some(0)), p(1, 3, 4, 5, Some(4))],
        ms: vec![
            m(4, Some(1), Some(1), true),
            m(3, None, None, true),
            m(0, Some(0), Some(6), false),
        ],
        gs: vec![g(1, 4, "stopping the world", Some(4)), g(6, 2, "", Some(0))],
        ..SchedState::default()
    }
}

#[test]
fn detailed_block_1_27() {
    let want = "\
SCHED 2806ms: gomaxprocs=2 idleprocs=0 threads=5 spinningthreads=0 needspinning=1 idlethreads=2 runqueue=0 gcwaiting=true nmidlelocked=0 stopwait=1 sysmonwait=false
  P0: status=1 schedtick=1 syscalltick=1 m=0 runqsize=0 gfreecnt=0 timerslen=0
  P1: status=3 schedtick=4 syscalltick=5 m=4 runqsize=0 gfreecnt=0 timerslen=0
  M4: p=1 curg=1 mallocing=0 throwing=0 preemptoff= locks=0 dying=0 spinning=false blocked=true lockedg=nil
  M3: p=nil curg=nil mallocing=0 throwing=0 preemptoff= locks=0 dying=0 spinning=false blocked=true lockedg=nil
  M0: p=0 curg=6 mallocing=0 throwing=0 preemptoff= locks=0 dying=0 spinning=false blocked=false lockedg=nil
  G1: status=4(stopping the world) m=4 lockedm=nil
  G6: status=2() m=0 lockedm=nil
";
    assert_eq!(schedtrace_text(&stuck(27), true), want);
}

#[test]
fn detailed_block_1_19_uses_minus_one_and_integer_flags() {
    let text = schedtrace_text(&stuck(19), true);
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        "SCHED 2806ms: gomaxprocs=2 idleprocs=0 threads=5 spinningthreads=0 idlethreads=2 runqueue=0 gcwaiting=1 nmidlelocked=0 stopwait=1 sysmonwait=0"
    );
    assert!(text.contains("  M3: p=-1 curg=-1 mallocing=0"), "{text}");
    assert!(text.contains("lockedg=-1\n"), "{text}");
    assert!(text.contains("  G6: status=2() m=0 lockedm=-1\n"), "{text}");
}
