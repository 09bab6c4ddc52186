//! The stop-the-world analysis of `gopeek sched`, on plain scheduler data
//! ([`SchedState`]): is a stop pending, who started it and why, which Ps
//! it still waits for and why they do not stop; with no stop pending, the
//! Ps whose goroutine has not rescheduled for a long time (CPU hogs).
//!
//! The protocol it reads (`../shared/go-runtime/sched.md` §3, measured on
//! Go 1.19 and 1.21-1.27):
//! * `sched.gcwaiting` set: a stop is pending; `sched.stopwait` Ps are not
//!   stopped yet.
//! * The initiator's P is `_Pgcstop` and still has its M (every other path
//!   to `_Pgcstop` clears `p.m`); its M's `preemptoff` holds the reason
//!   `stopTheWorld` recorded (`gcing` for GC mark termination); GC sweep
//!   termination records none and is recognised by `gcsema` held and
//!   `work.tSweepTerm` newer than `work.tEnd`.
//! * Every P not `_Pgcstop` is waited for. A P in a syscall (`_Psyscall`,
//!   or from 1.26 a running P whose goroutine is `_Gsyscall`) is taken by
//!   the stop itself: a long cgo call never blocks it.

use crate::gotrace::sched::{MState, PState, SchedState, StackFrame};

/// `_Psyscall`.
const P_SYSCALL: u32 = 2;
/// `_Prunning`.
const P_RUNNING: u32 = 1;
/// `_Pgcstop`.
const P_GCSTOP: u32 = 3;
/// `_Gsyscall`.
const G_SYSCALL: u32 = 3;
/// `_Gscan`.
const G_SCAN: u32 = 0x1000;

/// A P, its M and thread, and the goroutine on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StwParty {
    /// The P's index.
    pub p: i32,
    /// Its M's id.
    pub m: Option<i64>,
    /// The M's thread id.
    pub thread_id: Option<u64>,
    /// The goroutine running there (`m.curg`).
    pub goroutine: Option<u64>,
    /// That goroutine's raw status.
    pub goroutine_status: Option<u32>,
    /// How long it has run without rescheduling (sysmon's view), ms.
    pub running_ms: Option<i64>,
    /// Why it does not stop (blockers, hogs): one plain sentence each.
    pub why: Vec<String>,
    /// Its stack, innermost first, unwound from the thread's registers
    /// (empty when the thread was not held).
    pub frames: Vec<StackFrame>,
}

/// The `stw` section of `gopeek sched`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StwReport {
    /// `sched.gcwaiting`: a stop-the-world is pending or in force.
    pub pending: bool,
    /// `sched.stopwait`: Ps it still waits for (0: the world is stopped).
    pub stopwait: i32,
    /// How long the stop has been going on, ms, where the runtime stamps
    /// it (`p.gcStopTime` from 1.23; `work.tSweepTerm` for a GC).
    pub since_ms: Option<i64>,
    /// The reason the runtime recorded (or inferred, said so).
    pub reason: Option<String>,
    /// The P that started it, with its goroutine.
    pub initiator: Option<StwParty>,
    /// The Ps it waits for.
    pub waiting_for: Vec<StwParty>,
    /// With no stop pending: Ps whose goroutine has run ≥ the threshold.
    pub hogs: Vec<StwParty>,
    /// Goroutines in a syscall or cgo call, not blamed: their P is taken.
    pub in_syscall: Vec<u64>,
}

fn m_by_id(s: &SchedState, id: Option<i64>) -> Option<&MState> {
    id.and_then(|id| s.ms.iter().find(|m| m.id == id))
}

fn g_status(s: &SchedState, goid: Option<u64>) -> Option<u32> {
    goid.and_then(|id| s.gs.iter().find(|g| g.goid == id))
        .map(|g| g.status)
}

fn party(s: &SchedState, p: &PState) -> StwParty {
    let m = m_by_id(s, p.m);
    let goroutine = m.and_then(|m| m.curg);
    let stack = p.m.and_then(|id| s.stacks.iter().find(|t| t.m == id));
    StwParty {
        p: p.id,
        m: p.m,
        thread_id: m.map(|m| m.thread_id),
        goroutine,
        goroutine_status: g_status(s, goroutine),
        running_ms: p.running_ms,
        why: Vec::new(),
        frames: stack.map(|t| t.frames.clone()).unwrap_or_default(),
    }
}

/// Why the goroutine on `p` does not reach a safe point, from the
/// scheduler's own fields (the thread's PC adds more, see
/// `snapshot::sched`). `asyncpreemptoff` is the target's GODEBUG setting.
fn why_not_preempted(s: &SchedState, p: &PState, asyncpreemptoff: bool) -> Vec<String> {
    let mut why = Vec::new();
    let Some(m) = m_by_id(s, p.m) else {
        return why;
    };
    if m.locks > 0 {
        why.push(format!("its M holds {} runtime lock(s) (m.locks)", m.locks));
    }
    if m.mallocing > 0 {
        why.push("its M is inside the allocator (m.mallocing)".to_string());
    }
    if !m.preemptoff.is_empty() {
        why.push(format!("preemption is off on its M: {:?}", m.preemptoff));
    }
    let g = m.curg.and_then(|id| s.gs.iter().find(|g| g.goid == id));
    if let Some(g) = g {
        if g.preempt && g.stackguard_preempt {
            why.push(
                "preemption was requested (g.preempt, stackguard0=stackPreempt) but the goroutine has not called a function with a stack check since"
                    .to_string(),
            );
        }
    }
    if let Some(t) = s.stacks.iter().find(|t| Some(t.m) == p.m) {
        why.extend(t.pc_verdict.iter().map(|v| format!("its thread's PC: {v}")));
    }
    if asyncpreemptoff {
        why.push(
            "async preemption is off (GODEBUG=asyncpreemptoff=1): only a function call can stop it"
                .to_string(),
        );
    } else if p.preempt {
        why.push(format!(
            "async preemption signals are sent and refused (p.preempt set; {} handled so far on this M): the PC is never at an async safe point",
            m.preempt_gen
        ));
    }
    why
}

/// The initiator's reason: `m.preemptoff`, or GC sweep termination
/// inferred from `gcsema` and the GC timestamps.
fn reason(s: &SchedState, initiator: Option<&MState>) -> Option<String> {
    let off = initiator.map(|m| m.preemptoff.as_str()).unwrap_or("");
    match off {
        "gcing" => Some("GC mark termination".to_string()),
        "" if s.gcsema == Some(0) && s.t_sweep_term > s.t_end => Some(
            "GC sweep termination (inferred: no reason recorded, gcsema held, a GC started and not ended)"
                .to_string(),
        ),
        "" => None,
        r => Some(r.to_string()),
    }
}

/// Analyses `s`. `hog_ms`: the running time from which a P with no stop
/// pending is reported as a CPU hog.
pub fn analyze_stw(s: &SchedState, asyncpreemptoff: bool, hog_ms: i64) -> StwReport {
    let in_syscall: Vec<u64> =
        s.gs.iter()
            .filter(|g| g.status & !G_SCAN == G_SYSCALL)
            .map(|g| g.goid)
            .collect();
    let mut r = StwReport {
        pending: s.gcwaiting,
        stopwait: s.stopwait,
        in_syscall,
        ..StwReport::default()
    };
    let goroutine_in_syscall = |p: &PState| {
        let st = m_by_id(s, p.m)
            .and_then(|m| m.curg)
            .and_then(|id| g_status(s, Some(id)));
        st.is_some_and(|st| st & !G_SCAN == G_SYSCALL)
    };
    if s.gcwaiting {
        let init = s.ps.iter().find(|p| p.status == P_GCSTOP && p.m.is_some());
        let init_m = init.and_then(|p| m_by_id(s, p.m));
        r.reason = reason(s, init_m);
        r.initiator = init.map(|p| party(s, p));
        r.since_ms = match init.map(|p| p.gc_stop_time) {
            Some(t) if t > 0 => Some(s.now_ns.saturating_sub(t) / 1_000_000),
            _ if r
                .reason
                .as_deref()
                .is_some_and(|x| x.starts_with("GC sweep")) =>
            {
                Some(s.now_ns.saturating_sub(s.t_sweep_term) / 1_000_000)
            }
            _ if r.reason.as_deref() == Some("GC mark termination") && s.t_mark_term > 0 => {
                Some(s.now_ns.saturating_sub(s.t_mark_term) / 1_000_000)
            }
            _ => None,
        };
        if s.stopwait > 0 {
            for p in s.ps.iter().filter(|p| p.status != P_GCSTOP) {
                if p.status == P_SYSCALL || (p.status == P_RUNNING && goroutine_in_syscall(p)) {
                    continue;
                }
                let mut b = party(s, p);
                if p.status == P_RUNNING {
                    b.why = why_not_preempted(s, p, asyncpreemptoff);
                }
                r.waiting_for.push(b);
            }
        }
    } else {
        for p in &s.ps {
            if p.status != P_RUNNING || goroutine_in_syscall(p) {
                continue;
            }
            if p.running_ms.is_some_and(|ms| ms >= hog_ms) {
                let mut b = party(s, p);
                b.why = why_not_preempted(s, p, asyncpreemptoff);
                r.hogs.push(b);
            }
        }
    }
    r
}
