//! The scheduler as plain data, and Go's `schedtrace` printing rules for
//! it: the `SCHED` line and, detailed (`scheddetail=1`), the P, M and G
//! lines, byte for byte as `runtime.schedtrace` of the target's Go version
//! prints them (`$GOROOT/src/runtime/proc.go`, `func schedtrace`).
//!
//! The per-version differences (measured, `../shared/go-runtime/sched.md`
//! §1.2):
//! * 1.19: no `needspinning=`; a missing P/M/G prints `-1`; `gcwaiting=`
//!   and `sysmonwait=` are integers (`0`/`1`).
//! * 1.21+: `needspinning=`; a missing P/M/G prints `nil`; `gcwaiting=`
//!   and `sysmonwait=` are `true`/`false`.
//! * 1.25+: the short form's run-queue list is `[ a b ]` followed by
//!   ` schedticks=[ t0 t1 ]`; before, `[a b]`.
//!
//! Where the values come from (`runqueue=` from `sched.runqsize` or
//! `sched.runq.size`, `timerslen=` from `p.timers` or `p.timers.heap`, ...)
//! is the reader's business (`walk::sched`); here every field is already
//! the number Go prints.

use std::fmt::Write;

/// One P as `schedtrace` sees it, plus what the stop-the-world analysis
/// and the JSON report need.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PState {
    /// Index in `allp` (what Go prints after `P`).
    pub id: i32,
    /// `p.status` (0 idle, 1 running, 2 syscall, 3 gcstop, 4 dead).
    pub status: u32,
    /// `p.schedtick`.
    pub schedtick: u32,
    /// `p.syscalltick`.
    pub syscalltick: u32,
    /// `p.m.id`, if the P has an M.
    pub m: Option<i64>,
    /// `runqtail - runqhead` (u32 arithmetic, as Go does).
    pub runqsize: u32,
    /// `p.gFree.n` / `p.gFree.size`.
    pub gfreecnt: i32,
    /// `len(p.timers)` / `len(p.timers.heap)`.
    pub timers: i64,
    /// `p.preempt`: async preemption requested.
    #[serde(skip)]
    pub preempt: bool,
    /// `p.runSafePointFn`: still owes a forEachP safe point.
    #[serde(skip)]
    pub run_safe_point_fn: bool,
    /// `p.gcStopTime` (nanotime; 1.23+, 0 before).
    #[serde(skip)]
    pub gc_stop_time: i64,
    /// `p.sysmontick.schedtick`: the schedtick sysmon last saw.
    #[serde(skip)]
    pub sysmon_schedtick: u32,
    /// `p.sysmontick.schedwhen` (nanotime): when sysmon saw it change.
    #[serde(skip)]
    pub sysmon_schedwhen: i64,
    /// How long the P's current goroutine has run without rescheduling,
    /// in ms, by sysmon's bookkeeping (`now - sysmontick.schedwhen`, when
    /// sysmon's tick still equals the P's); `None` when the P runs nothing
    /// or sysmon has not looked at it since its last schedule.
    pub running_ms: Option<i64>,
}

/// One M as `scheddetail` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MState {
    /// `m.id`.
    pub id: i64,
    /// `m.procid`: the Linux thread id.
    pub thread_id: u64,
    /// `m.p.id`, if it holds a P.
    pub p: Option<i32>,
    /// `m.curg.goid`, if it runs a user goroutine.
    pub curg: Option<u64>,
    /// `m.mallocing`.
    pub mallocing: i32,
    /// `m.throwing` (an int32 in 1.19, a throwType from 1.21).
    pub throwing: i32,
    /// `m.preemptoff`: why preemption is off (a STW reason, `gcing`, ...).
    pub preemptoff: String,
    /// `m.locks`.
    pub locks: i32,
    /// `m.dying`.
    pub dying: i32,
    /// `m.spinning`.
    pub spinning: bool,
    /// `m.blocked`.
    pub blocked: bool,
    /// `m.lockedg.goid`, if a goroutine is locked to this M.
    pub lockedg: Option<u64>,
    /// `m.preemptGen`: async preemption signals handled so far.
    #[serde(skip)]
    pub preempt_gen: u32,
    /// `m.signalPending`: a preemption signal is in flight.
    #[serde(skip)]
    pub signal_pending: bool,
    /// Runtime addresses the stack reader needs: the m, its g0 and curg,
    /// and `m.vdsoSP`/`m.vdsoPC` (non-zero inside a vDSO call).
    #[serde(skip)]
    pub addrs: MAddrs,
}

/// Where an M's structures are, for unwinding its thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MAddrs {
    /// `&m`.
    pub m: u64,
    /// `m.g0`.
    pub g0: u64,
    /// `m.curg`.
    pub curg: u64,
    /// `m.gsignal`: `gopeek threads` tells a thread in a signal handler.
    pub gsignal: u64,
    /// `m.vdsoSP`.
    pub vdso_sp: u64,
    /// `m.vdsoPC`.
    pub vdso_pc: u64,
}

/// One frame of a thread's stack, symbolized (inlined frames each get
/// one, innermost first).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StackFrame {
    /// Function name as Go prints it.
    pub function: String,
    /// Source file.
    pub file: String,
    /// Line.
    pub line: i32,
    /// The PC (runtime address).
    pub pc: u64,
    /// The frame's SP (`gopeek threads` prints it; not in `sched`'s JSON).
    #[serde(skip)]
    pub sp: u64,
    /// This physical PC is not an async safe point (PCDATA_UnsafePoint,
    /// assembly, runtime code); the same for every inlined frame of it.
    pub unsafe_point: bool,
}

/// A thread's stack, unwound from its registers while it was held, and
/// what its PC says about preemption.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ThreadStack {
    /// The M.
    pub m: i64,
    /// Its thread.
    pub thread_id: u64,
    /// The thread's PC when held.
    pub pc: u64,
    /// System-stack frames then the goroutine's, innermost first.
    pub frames: Vec<StackFrame>,
    /// Why the PC is not an async safe point, in words (empty if it is).
    pub pc_verdict: Vec<String>,
    /// Why the stack stops early, if it does.
    pub error: Option<String>,
}

/// One goroutine as `scheddetail` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GState {
    /// `g.goid`.
    pub goid: u64,
    /// `readgstatus(g)`: the raw status, `_Gscan` bit included.
    pub status: u32,
    /// `g.waitreason.String()`: printed for every status (it goes stale).
    pub waitreason: String,
    /// `g.m.id`.
    pub m: Option<i64>,
    /// `g.lockedm.id`.
    pub lockedm: Option<i64>,
    /// `g.preempt`: preemption requested.
    pub preempt: bool,
    /// `g.stackguard0 == stackPreempt`.
    pub stackguard_preempt: bool,
    /// `g.startpc` (runtime address), to name the goroutine's function.
    #[serde(skip)]
    pub startpc: u64,
}

/// The scheduler at one moment (or, read while running, over a few
/// microseconds, as the runtime's own trace is).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SchedState {
    /// The target's Go minor version: picks the text rules.
    #[serde(skip)]
    pub go_minor: u32,
    /// `(nanotime - starttime) / 1e6`: the `SCHED <N>ms` figure.
    pub uptime_ms: i64,
    /// `gomaxprocs`.
    pub gomaxprocs: i32,
    /// `sched.npidle`.
    pub idleprocs: i32,
    /// `mcount()` = `sched.mnext - sched.nmfreed`.
    pub threads: i32,
    /// `sched.nmspinning`.
    pub spinningthreads: i32,
    /// `sched.needspinning` (1.21+).
    pub needspinning: Option<u32>,
    /// `sched.nmidle`.
    pub idlethreads: i32,
    /// Global run queue length.
    pub runqueue: i32,
    /// `sched.gcwaiting`: a stop-the-world is pending or in force.
    pub gcwaiting: bool,
    /// `sched.nmidlelocked`.
    pub nmidlelocked: i32,
    /// `sched.stopwait`: Ps the stop-the-world still waits for.
    pub stopwait: i32,
    /// `sched.sysmonwait`.
    pub sysmonwait: bool,
    /// Every P of `allp`, in order.
    pub ps: Vec<PState>,
    /// Every M of `allm`, newest first (m0 last), as Go walks them.
    pub ms: Vec<MState>,
    /// Every g of `allgs`, in order (the G lines; not in the JSON).
    #[serde(skip)]
    pub gs: Vec<GState>,
    /// The GC's state, where its globals were found.
    #[serde(skip)]
    pub gc: Option<GcState>,
    /// `sched.safePointWait`: Ps a forEachP still waits for.
    #[serde(skip)]
    pub safe_point_wait: i32,
    /// `worldsema` (0 = held by a stop-the-world owner), if found.
    #[serde(skip)]
    pub worldsema: Option<u32>,
    /// `gcsema` (0 = a GC cycle or `stopTheWorldGC` caller holds it).
    #[serde(skip)]
    pub gcsema: Option<u32>,
    /// `work.tSweepTerm` (nanotime): start of the current/last GC.
    #[serde(skip)]
    pub t_sweep_term: i64,
    /// `work.tMarkTerm` (nanotime).
    #[serde(skip)]
    pub t_mark_term: i64,
    /// `work.tEnd` (nanotime): end of the last GC.
    #[serde(skip)]
    pub t_end: i64,
    /// The reader's nanotime when this was read.
    #[serde(skip)]
    pub now_ns: i64,
    /// Stacks of the threads that matter (a STW's parties, CPU hogs),
    /// when they could be held and unwound.
    #[serde(skip)]
    pub stacks: Vec<ThreadStack>,
}

/// The GC's state (`gcphase`, `work`, `memstats`, `gcController`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcState {
    /// `gcphase`: `off`, `mark` or `mark termination`.
    pub phase: String,
    /// `work.cycles`: GC cycles started.
    pub cycles: u32,
    /// `memstats.numgc`: GC cycles completed (None without `memstats`).
    pub num_gc: Option<u32>,
    /// `gcController.heapLive` in bytes.
    pub heap_live: Option<u64>,
    /// `gcController.gcPercentHeapGoal` in bytes (the GOGC goal; the
    /// memory limit may lower the effective one).
    pub heap_goal: Option<u64>,
    /// GOGC (`gcController.gcPercent`; -1 = off).
    pub gogc: Option<i32>,
    /// GOMEMLIMIT in bytes (`gcController.memoryLimit`).
    pub memory_limit: Option<i64>,
}

/// `gcphase`'s name.
pub fn gc_phase_name(phase: u32) -> String {
    match phase {
        0 => "off".to_string(),
        1 => "mark".to_string(),
        2 => "mark termination".to_string(),
        n => format!("unknown ({n})"),
    }
}

/// How Go prints a missing P/M/G id: `-1` in 1.19, `nil` from 1.21.
fn opt<T: std::fmt::Display>(minor: u32, v: Option<T>) -> String {
    match v {
        Some(v) => v.to_string(),
        None if minor < 21 => "-1".to_string(),
        None => "nil".to_string(),
    }
}

/// A 1.19 `uint32` flag prints as `0`/`1`, a 1.21+ `atomic.Bool` as
/// `true`/`false`.
fn flag(minor: u32, v: bool) -> String {
    if minor < 21 {
        u8::from(v).to_string()
    } else {
        v.to_string()
    }
}

/// The text `runtime.schedtrace(detailed)` prints for `s`, every line
/// ending in `\n`.
pub fn schedtrace_text(s: &SchedState, detailed: bool) -> String {
    let v = s.go_minor;
    let mut o = String::new();
    let _ = write!(
        o,
        "SCHED {}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={}",
        s.uptime_ms, s.gomaxprocs, s.idleprocs, s.threads, s.spinningthreads
    );
    if v >= 21 {
        let _ = write!(o, " needspinning={}", s.needspinning.unwrap_or(0));
    }
    let _ = write!(o, " idlethreads={} runqueue={}", s.idlethreads, s.runqueue);
    if !detailed {
        short_tail(&mut o, s);
        return o;
    }
    let _ = writeln!(
        o,
        " gcwaiting={} nmidlelocked={} stopwait={} sysmonwait={}",
        flag(v, s.gcwaiting),
        s.nmidlelocked,
        s.stopwait,
        flag(v, s.sysmonwait)
    );
    for p in &s.ps {
        let _ = writeln!(
            o,
            "  P{}: status={} schedtick={} syscalltick={} m={} runqsize={} gfreecnt={} timerslen={}",
            p.id,
            p.status,
            p.schedtick,
            p.syscalltick,
            opt(v, p.m),
            p.runqsize,
            p.gfreecnt,
            p.timers
        );
    }
    for m in &s.ms {
        let _ = writeln!(
            o,
            "  M{}: p={} curg={} mallocing={} throwing={} preemptoff={} locks={} dying={} spinning={} blocked={} lockedg={}",
            m.id,
            opt(v, m.p),
            opt(v, m.curg),
            m.mallocing,
            m.throwing,
            m.preemptoff,
            m.locks,
            m.dying,
            m.spinning,
            m.blocked,
            opt(v, m.lockedg)
        );
    }
    for g in &s.gs {
        let _ = writeln!(
            o,
            "  G{}: status={}({}) m={} lockedm={}",
            g.goid,
            g.status,
            g.waitreason,
            opt(v, g.m),
            opt(v, g.lockedm)
        );
    }
    o
}

/// The short form's per-P run-queue lengths (and, 1.25+, schedticks).
fn short_tail(o: &mut String, s: &SchedState) {
    let n = s.ps.len();
    let new_style = s.go_minor >= 25;
    for (i, p) in s.ps.iter().enumerate() {
        o.push(' ');
        if i == 0 {
            o.push_str(if new_style { "[ " } else { "[" });
        }
        let _ = write!(o, "{}", p.runqsize);
        if i + 1 == n {
            o.push_str(if new_style { " ]" } else { "]\n" });
        }
    }
    if new_style {
        o.push_str(" schedticks=[ ");
        for p in &s.ps {
            let _ = write!(o, "{} ", p.schedtick);
        }
        o.push_str("]\n");
    } else if n == 0 {
        // Go prints no newline then either; keep lines whole for output.
        o.push('\n');
    }
}

#[cfg(test)]
mod tests;
