//! The extra offsets `gopeek sched` reads on top of [`RuntimeOffsets`]:
//! what `schedtrace` prints that a goroutine dump does not need
//! (`gfreecnt`, `timerslen`), the stop-the-world and preemption state,
//! and the GC figures. Kept apart from [`RuntimeOffsets`] so that a field
//! missing here fails `gopeek sched` only, never `gopeek dump`.

use super::{LayoutError, RuntimeLayout};

/// Offsets for the scheduler view, composed per Go version (all in bytes
/// from the start of the named struct).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SchedDetailOffsets {
    /// `g.stackguard0` (uintptr): `stackPreempt` once preemption was asked.
    pub g_stackguard0: u64,
    /// `g.preempt` (bool): preemption requested.
    pub g_preempt: u64,
    /// `p.sysmontick.schedtick` (u32): sysmon's last seen schedtick.
    pub p_sysmon_schedtick: u64,
    /// `p.sysmontick.schedwhen` (i64 nanotime): when sysmon last saw the
    /// P's schedtick change, i.e. roughly since when its goroutine runs.
    pub p_sysmon_schedwhen: u64,
    /// The free-g count `schedtrace` prints as `gfreecnt` (i32): `p.gFree.n`
    /// up to 1.24, `p.gFree.size` (gList) from 1.25; both sit right after
    /// the list head.
    pub p_gfree_n: u64,
    /// Length word of the slice printed as `timerslen`: `p.timers` (a
    /// slice) up to 1.22, `p.timers.heap` from 1.23.
    pub p_timers_len: u64,
    /// `p.preempt` (bool): async preemption requested for this P.
    pub p_preempt: u64,
    /// `p.gcStopTime` (i64, Go 1.23+): when this P stopped for a STW.
    pub p_gc_stop_time: Option<u64>,
    /// `p.runSafePointFn` (u32): the P still owes a forEachP safe point.
    pub p_run_safe_point_fn: u64,
    /// `m.preemptGen` (u32): async preemption signals handled.
    pub m_preempt_gen: u64,
    /// `m.signalPending` (u32): a preemption signal is in flight.
    pub m_signal_pending: u64,
    /// `sched.safePointWait` (i32): Ps a forEachP still waits for.
    pub sched_safe_point_wait: u64,
    /// `work.cycles` (u32): GC cycles started.
    pub work_cycles: u64,
    /// `work.tSweepTerm` (i64 nanotime): start of the current/last GC.
    pub work_t_sweep_term: u64,
    /// `work.tMarkTerm` (i64 nanotime).
    pub work_t_mark_term: u64,
    /// `work.tEnd` (i64 nanotime): end of the last GC.
    pub work_t_end: u64,
    /// `memstats.numgc` (u32): completed GC cycles.
    pub memstats_numgc: u64,
    /// `gcController.gcPercent` (i32, atomic from 1.19): GOGC.
    pub gcc_gc_percent: u64,
    /// `gcController.memoryLimit` (i64): GOMEMLIMIT.
    pub gcc_memory_limit: u64,
    /// `gcController.heapLive` (u64).
    pub gcc_heap_live: u64,
    /// `gcController.gcPercentHeapGoal` (u64): the GOGC heap goal.
    pub gcc_heap_goal: u64,
}

impl SchedDetailOffsets {
    /// Composes the offsets; the error names the first missing field.
    pub fn from_layout(layout: &RuntimeLayout) -> Result<Self, LayoutError> {
        let missing = |s: &str, f: &str| LayoutError::MissingField {
            source_desc: layout.source.to_string(),
            structure: s.to_string(),
            field: f.to_string(),
        };
        let req = |s: &str, f: &str| layout.field(s, f).ok_or_else(|| missing(s, f));
        const G: &str = "runtime.g";
        const P: &str = "runtime.p";
        const M: &str = "runtime.m";
        const TICK: &str = "runtime.sysmontick";
        const WORK: &str = "runtime.workType";
        const MSTATS: &str = "runtime.mstats";
        const GCC: &str = "runtime.gcControllerState";

        let sysmontick = req(P, "sysmontick")?;
        // gFree: `struct{ gList; n int32 }` up to 1.24, a `gList{head;
        // size int32}` from 1.25: the count follows the one-word head.
        let glist = layout
            .struct_layout("runtime.gList")
            .ok_or_else(|| missing("runtime.gList", "head"))?;
        let gfree_n = req(P, "gFree")? + glist.offset("size").unwrap_or(glist.size);
        // timers: a `[]*timer` up to 1.22 (len at +8); from 1.23 a
        // `timers` struct whose `heap` slice has its len at +8.
        let timers = req(P, "timers")?;
        let timers_len = match layout.field("runtime.timers", "heap") {
            Some(heap) => timers + heap + 8,
            None => timers + 8,
        };
        Ok(SchedDetailOffsets {
            g_stackguard0: req(G, "stackguard0")?,
            g_preempt: req(G, "preempt")?,
            p_sysmon_schedtick: sysmontick + req(TICK, "schedtick")?,
            p_sysmon_schedwhen: sysmontick + req(TICK, "schedwhen")?,
            p_gfree_n: gfree_n,
            p_timers_len: timers_len,
            p_preempt: req(P, "preempt")?,
            p_gc_stop_time: layout.field(P, "gcStopTime"),
            p_run_safe_point_fn: req(P, "runSafePointFn")?,
            m_preempt_gen: req(M, "preemptGen")?,
            m_signal_pending: req(M, "signalPending")?,
            sched_safe_point_wait: req("runtime.schedt", "safePointWait")?,
            work_cycles: req(WORK, "cycles")?,
            work_t_sweep_term: req(WORK, "tSweepTerm")?,
            work_t_mark_term: req(WORK, "tMarkTerm")?,
            work_t_end: req(WORK, "tEnd")?,
            memstats_numgc: req(MSTATS, "numgc")?,
            gcc_gc_percent: req(GCC, "gcPercent")?,
            gcc_memory_limit: req(GCC, "memoryLimit")?,
            gcc_heap_live: req(GCC, "heapLive")?,
            gcc_heap_goal: req(GCC, "gcPercentHeapGoal")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::tables::supported_minors;

    /// The figures `../shared/go-runtime/sched.md` measured from the DWARF
    /// of real binaries: gfreecnt, timerslen, preempt and gcStopTime.
    #[test]
    fn composed_offsets_match_the_measured_table() {
        let want: [(u32, u64, u64, u64, Option<u64>); 8] = [
            (19, 0x9a8, 0x2290, 0x22c8, None),
            (21, 0x9a8, 0x2290, 0x22c8, None),
            (22, 0x9a8, 0x22b0, 0x22e8, None),
            (23, 0x9a0, 0x2288 + 0x10, 0x22e0, Some(0x22e8)),
            (24, 0x9a0, 0x2288 + 0x10, 0x22e8, Some(0x22f0)),
            (25, 0x9a0, 0x24b0 + 0x10, 0x2518, Some(0x2520)),
            (26, 0x9a8, 0x3568 + 0x10, 0x35d0, Some(0x35d8)),
            (27, 0x9a8, 0x3568 + 0x10, 0x35d0, Some(0x35d8)),
        ];
        assert_eq!(supported_minors(), &[19, 21, 22, 23, 24, 25, 26, 27]);
        for (minor, gfree, timers, preempt, stop) in want {
            let l = RuntimeLayout::from_table(minor).unwrap();
            let o = SchedDetailOffsets::from_layout(&l).unwrap();
            assert_eq!(o.p_gfree_n, gfree, "1.{minor} gfreecnt");
            assert_eq!(o.p_timers_len, timers, "1.{minor} timerslen");
            assert_eq!(o.p_preempt, preempt, "1.{minor} p.preempt");
            assert_eq!(o.p_gc_stop_time, stop, "1.{minor} p.gcStopTime");
            // sysmontick.schedwhen is at +8 in both of its layouts.
            assert_eq!(o.p_sysmon_schedwhen, 0x18 + 8, "1.{minor} schedwhen");
        }
    }
}
