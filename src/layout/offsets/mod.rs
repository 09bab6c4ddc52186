//! The typed view of a [`RuntimeLayout`]: one named, composed offset for
//! every field gopeek reads, checked once up front.
//!
//! A [`RuntimeLayout`] is a bag of `(struct, field) → offset`. The readers
//! want more: `g.sched.sp` is `off(g.sched) + off(gobuf.sp)`, the global run
//! queue's length is `schedt.runqsize` before Go 1.25 and `schedt.runq.size`
//! after, and a field that is missing must be noticed when the layout is
//! chosen, not in the middle of a snapshot. [`RuntimeOffsets::from_layout`]
//! does all of that and names the missing field in its error.
//!
//! All offsets are in bytes from the start of the struct named in the
//! section. Field widths are noted where the reader must know them; they
//! are the same for every supported version unless said otherwise.
//! `Option` fields are absent in some supported Go versions.

use super::{LayoutError, LayoutSource, RuntimeLayout};

/// Offsets in `runtime.g`, the goroutine descriptor: everything gopeek reads
/// to list a goroutine, print its header and start unwinding its stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GOffsets {
    /// `sizeof(g)`: lets the walker copy a whole g in one read.
    pub size: u64,
    /// `g.stack.lo` (uintptr): bottom of the goroutine stack; with `hi`, it
    /// bounds every stack read and tells whether a thread's SP is on this g.
    pub(crate) stack_lo: u64,
    /// `g.stack.hi` (uintptr): top of the goroutine stack.
    pub(crate) stack_hi: u64,
    /// `g.m` (*m): the M running this g (nil when parked); gives the thread
    /// (`m.procid`) whose registers hold a running g's PC/SP.
    pub(crate) m: u64,
    /// `g.sched.sp`: saved SP of a g that is not running; where unwinding of
    /// a parked goroutine starts.
    pub sched_sp: u64,
    /// `g.sched.pc`: saved PC that goes with `sched_sp`.
    pub(crate) sched_pc: u64,
    /// `g.sched.g` (guintptr): points back at the g itself; the strongest
    /// invariant for validating a g pointer and the offsets.
    pub(crate) sched_g: u64,
    /// `g.sched.lr`: saved link register (arm64 unwinding of the innermost
    /// frame).
    pub sched_lr: u64,
    /// `g.sched.bp`: saved frame pointer (frame-pointer unwinding).
    pub sched_bp: u64,
    /// `g.syscallsp` (uintptr): non-zero while the g is in a syscall or cgo
    /// call; Go's own traceback then starts from `syscallpc/syscallsp`.
    pub syscallsp: u64,
    /// `g.syscallpc` (uintptr): PC that goes with `syscallsp`.
    pub(crate) syscallpc: u64,
    /// `g.syscallbp` (uintptr, Go 1.23+): frame pointer saved at syscall
    /// entry, for frame-pointer unwinding of a g in a syscall.
    pub syscallbp: Option<u64>,
    /// `g.atomicstatus` (u32): `_Grunning`, `_Gwaiting`, ... with the
    /// `_Gscan` bit (0x1000); the status word of the header.
    pub atomicstatus: u64,
    /// `g.goid` (u64): the goroutine id printed as `goroutine N`.
    pub goid: u64,
    /// `g.schedlink` (guintptr): next g on a run queue or free list; needed
    /// to walk `sched.runq` for `gopeek sched`.
    pub(crate) schedlink: u64,
    /// `g.waitsince` (i64, nanotime): when the g blocked, for `N minutes`
    /// (set only by a GC's stack scan).
    pub(crate) waitsince: u64,
    /// `g.waitreason` (u8): index into the wait-reason table
    /// (`chan receive`, `IO wait`, ...).
    pub(crate) waitreason: u64,
    /// `g.lockedm` (muintptr): non-zero → `, locked to thread`.
    pub lockedm: u64,
    /// `g.trackingSeq` (u8, Go 1.17+): bumped by every transition out of
    /// running; part of the fingerprint that tells a goroutine read while
    /// the process ran from one that ran (and maybe re-parked) meanwhile.
    pub(crate) tracking_seq: Option<u64>,
    /// `g.parentGoid` (u64, Go 1.21+): printed as `created by ... in
    /// goroutine N`.
    pub parent_goid: Option<u64>,
    /// `g.gopc` (uintptr): PC of the `go` statement, for the `created by`
    /// line.
    pub(crate) gopc: u64,
    /// `g.ancestors` (*[]ancestorInfo): creator stacks recorded with
    /// `GODEBUG=tracebackancestors=N`.
    pub(crate) ancestors: u64,
    /// `g.startpc` (uintptr): the goroutine's function; decides whether it is
    /// a system goroutine that Go's traceback hides.
    pub(crate) startpc: u64,
    /// `g.labels` (unsafe.Pointer): pprof labels, shown in the dump and in
    /// 1.26+ headers.
    pub labels: u64,
    /// `g.timer` (*timer): the sleep timer of a g in `time.Sleep`.
    pub(crate) timer: Option<u64>,
    /// `g.bubble` (*synctestBubble, Go 1.25+): non-nil inside a
    /// `testing/synctest` bubble; header `, synctest bubble N`.
    pub(crate) bubble: Option<u64>,
    /// `g.syncGroup` (*synctestGroup, Go 1.24 only): the 1.24 spelling of
    /// `bubble`; header `, synctest group N`.
    pub sync_group: Option<u64>,
}

/// Offsets in `runtime.m`, an OS thread: maps threads to goroutines and
/// feeds `gopeek threads` and `gopeek sched`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MOffsets {
    /// `sizeof(m)`: copy a whole m in one read.
    pub size: u64,
    /// `m.g0` (*g): the thread's scheduler stack g.
    pub(crate) g0: u64,
    /// `m.morebuf.sp`: caller SP saved by `morestack`, to unwind a g caught
    /// growing its stack.
    pub(crate) morebuf_sp: u64,
    /// `m.morebuf.pc`: caller PC saved by `morestack`.
    pub(crate) morebuf_pc: u64,
    /// `m.procid` (u64): the Linux TID (m0's is the PID); links an M to the
    /// thread whose registers ptrace returns.
    pub procid: u64,
    /// `m.gsignal` (*g): the signal-handling g, to recognize a thread
    /// interrupted in a signal handler.
    pub(crate) gsignal: u64,
    /// `m.curg` (*g): the user g this thread runs, if any.
    pub curg: u64,
    /// `m.p` (puintptr): the P this M holds.
    pub p: u64,
    /// `m.id` (i64): the M number Go prints (`m=N`).
    pub(crate) id: u64,
    /// `m.mallocing` (i32): non-zero inside the allocator (a snapshot may
    /// see half-built objects).
    pub(crate) mallocing: u64,
    /// `m.throwing` (i32 in 1.19, u8 `throwType` from 1.21): the process is
    /// dying in a runtime throw.
    pub(crate) throwing: u64,
    /// `m.preemptoff` (string header): why preemption is disabled, shown by
    /// `gopeek sched` like `scheddetail`.
    pub(crate) preemptoff: u64,
    /// `m.locks` (i32): runtime locks held.
    pub(crate) locks: u64,
    /// `m.dying` (i32): panic/throw in progress on this M.
    pub(crate) dying: u64,
    /// `m.spinning` (bool): looking for work.
    pub(crate) spinning: u64,
    /// `m.blocked` (bool): parked on a note.
    pub(crate) blocked: u64,
    /// `m.incgo` (bool): executing a cgo call (C frames on g0).
    pub(crate) incgo: u64,
    /// `m.isextra` (bool, Go 1.21+): an extra M created for a C thread
    /// calling into Go.
    pub(crate) isextra: Option<u64>,
    /// `m.ncgo` (i32): cgo calls in progress.
    pub(crate) ncgo: u64,
    /// `m.alllink` (*m): next M on the `allm` list (m0 is last).
    pub(crate) alllink: u64,
    /// `m.schedlink` (muintptr): next M on a scheduler list.
    pub(crate) schedlink: u64,
    /// Where an idle M keeps the pointer to the next idle M on
    /// `sched.midle`: `m.schedlink` up to Go 1.25, `m.idleNode.next`
    /// (`listNodeManual`) from 1.26.
    pub(crate) idle_next: u64,
    /// `m.lockedg` (guintptr): the g locked to this thread.
    pub lockedg: u64,
    /// `m.libcallpc` (uintptr): PC of a libcall in progress (Go's traceback
    /// uses it for a g interrupted in one).
    pub libcallpc: u64,
    /// `m.libcallsp` (uintptr): SP that goes with `libcallpc`.
    pub(crate) libcallsp: u64,
    /// `m.libcallg` (guintptr): the g that made the libcall.
    pub(crate) libcallg: u64,
    /// `m.vdsoSP` (uintptr): non-zero while in a vDSO call; Go's traceback
    /// then starts from `vdsoPC/vdsoSP`.
    pub(crate) vdso_sp: u64,
    /// `m.vdsoPC` (uintptr): PC that goes with `vdso_sp`.
    pub(crate) vdso_pc: u64,
}

/// Offsets in `runtime.p`, a scheduler processor: for `gopeek sched` (run
/// queues, status) and to tell which g runs where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct POffsets {
    /// `sizeof(p)` (differs between amd64 and arm64 from Go 1.26).
    pub size: u64,
    /// `p.id` (i32): the P number.
    pub(crate) id: u64,
    /// `p.status` (u32): `_Pidle`, `_Prunning`, ...
    pub(crate) status: u64,
    /// `p.link` (puintptr): next P on the idle list.
    pub(crate) link: u64,
    /// `p.schedtick` (u32): scheduler calls, for `schedtrace`-style output.
    pub(crate) schedtick: u64,
    /// `p.syscalltick` (u32): syscalls, likewise.
    pub(crate) syscalltick: u64,
    /// `p.m` (muintptr): the M holding this P.
    pub m: u64,
    /// `p.runqhead` (u32): local run queue head index.
    pub(crate) runqhead: u64,
    /// `p.runqtail` (u32): local run queue tail index.
    pub(crate) runqtail: u64,
    /// `p.runq` ([`P_RUNQ_LEN`]guintptr): the local run queue ring.
    pub(crate) runq: u64,
    /// `p.runnext` (guintptr): the g to run next, ahead of the queue.
    pub(crate) runnext: u64,
}

/// Offsets in `runtime.schedt` (the global `runtime.sched`): global run
/// queue, idle lists and stop-the-world state for `gopeek sched`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SchedOffsets {
    /// `sizeof(schedt)`.
    pub size: u64,
    /// `sched.goidgen` (u64): the last goroutine id handed out.
    pub(crate) goidgen: u64,
    /// `sched.lock` (mutex): non-zero while held (a snapshot taken then may
    /// see lists mid-update).
    pub(crate) lock: u64,
    /// The head of the idle-M list: `sched.midle` (muintptr) up to Go
    /// 1.25, `sched.midle.obj` (`listHeadManual`) from 1.26. Follow it with
    /// [`MOffsets::idle_next`]. Also the anchor the locator uses to find
    /// `runtime.sched` (`mput` stores here).
    pub(crate) midle: u64,
    /// `sched.nmidle` (i32): idle Ms.
    pub(crate) nmidle: u64,
    /// `sched.nmidlelocked` (i32): locked Ms waiting for their g.
    pub(crate) nmidlelocked: u64,
    /// `sched.mnext` (i64): Ms created so far (= next M id).
    pub(crate) mnext: u64,
    /// `sched.maxmcount` (i32): thread limit.
    pub(crate) maxmcount: u64,
    /// `sched.nmsys` (i32): system Ms not counted for deadlock.
    pub(crate) nmsys: u64,
    /// `sched.nmfreed` (i64): Ms freed; `threads = mnext - nmfreed`.
    pub(crate) nmfreed: u64,
    /// `sched.ngsys` (u32/i32): system goroutines.
    pub(crate) ngsys: u64,
    /// `sched.pidle` (puintptr): idle P list, linked by `p.link`.
    pub(crate) pidle: u64,
    /// `sched.npidle` (u32/i32): idle Ps.
    pub(crate) npidle: u64,
    /// `sched.nmspinning` (u32/i32): spinning Ms.
    pub(crate) nmspinning: u64,
    /// `sched.needspinning` (u32, Go 1.21+).
    pub(crate) needspinning: Option<u64>,
    /// `sched.runq.head` (guintptr): global run queue, linked by
    /// `g.schedlink`.
    pub runq_head: u64,
    /// `sched.runq.tail` (guintptr).
    pub(crate) runq_tail: u64,
    /// Length of the global run queue (i32): `sched.runqsize` up to Go
    /// 1.24, `sched.runq.size` (gQueue) from 1.25.
    pub runq_size: u64,
    /// `sched.gcwaiting` (u32 in 1.19, one-byte atomic.Bool from 1.21; read
    /// one byte): a stop-the-world is pending.
    pub gcwaiting: u64,
    /// `sched.stopwait` (i32): Ps the stop-the-world still waits for.
    pub(crate) stopwait: u64,
    /// `sched.sysmonwait` (u32 in 1.19, atomic.Bool from 1.21; read one
    /// byte): sysmon is asleep.
    pub(crate) sysmonwait: u64,
}

/// Offsets in `runtime.moduledata` (`runtime.firstmoduledata`): where the
/// pclntab pieces, text and data ranges of the executable are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModuledataOffsets {
    /// `sizeof(moduledata)`.
    pub(crate) size: u64,
    /// `pcHeader` (*pcHeader): the pclntab; also how the locator recognizes
    /// moduledata (its first word).
    pub(crate) pc_header: u64,
    /// `funcnametab` ([]byte): function names.
    pub(crate) funcnametab: u64,
    /// `cutab` ([]uint32): per-compilation-unit file indexes.
    pub(crate) cutab: u64,
    /// `filetab` ([]byte): file names.
    pub(crate) filetab: u64,
    /// `pctab` ([]byte): pc-value tables.
    pub(crate) pctab: u64,
    /// `pclntable` ([]byte): functab and `_func` records.
    pub(crate) pclntable: u64,
    /// `ftab` ([]functab): the function table.
    pub(crate) ftab: u64,
    /// `findfunctab` (uintptr): the PC → function bucket accelerator.
    pub(crate) findfunctab: u64,
    /// `minpc` (uintptr).
    pub(crate) minpc: u64,
    /// `maxpc` (uintptr).
    pub(crate) maxpc: u64,
    /// `text` (uintptr): base of every `entryoff` (pcHeader.textStart is 0
    /// from Go 1.26).
    pub(crate) text: u64,
    /// `etext` (uintptr).
    pub(crate) etext: u64,
    /// `noptrdata` (uintptr).
    pub(crate) noptrdata: u64,
    /// `enoptrdata` (uintptr).
    pub(crate) enoptrdata: u64,
    /// `data` (uintptr).
    pub(crate) data: u64,
    /// `edata` (uintptr).
    pub(crate) edata: u64,
    /// `bss` (uintptr).
    pub(crate) bss: u64,
    /// `ebss` (uintptr).
    pub(crate) ebss: u64,
    /// `noptrbss` (uintptr).
    pub(crate) noptrbss: u64,
    /// `enoptrbss` (uintptr).
    pub(crate) enoptrbss: u64,
    /// `end` (uintptr).
    pub(crate) end: u64,
    /// `types` (uintptr): start of type data.
    pub(crate) types: u64,
    /// `etypes` (uintptr).
    pub(crate) etypes: u64,
    /// `rodata` (uintptr).
    pub(crate) rodata: u64,
    /// `gofunc` (uintptr): base of funcdata offsets (inline trees); it cannot
    /// be derived from the pcHeader.
    pub gofunc: u64,
    /// `epclntab` (uintptr, Go 1.26+).
    pub(crate) epclntab: Option<u64>,
    /// `textsectmap` ([]textsect): split text sections (not used on linux
    /// amd64/arm64, but read to check).
    pub(crate) textsectmap: u64,
    /// `modulename` (string).
    pub(crate) modulename: u64,
    /// `next` (*moduledata): the next module (plugins).
    pub(crate) next: u64,
}

/// Offsets in `runtime._func`, the per-function pclntab record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FuncOffsets {
    /// `sizeof(_func)`: the `pcdata[npcdata]` array starts here (40 bytes in
    /// 1.19, 44 from 1.20), followed by `funcdata[nfuncdata]`.
    pub(crate) size: u64,
    /// `entryoff`/`entryOff` (u32): entry PC minus `moduledata.text`.
    pub(crate) entry_off: u64,
    /// `nameoff`/`nameOff` (i32): offset in `funcnametab`.
    pub(crate) name_off: u64,
    /// `args` (i32): argument size.
    pub(crate) args: u64,
    /// `deferreturn` (u32).
    pub(crate) deferreturn: u64,
    /// `pcsp` (u32): the SP-delta table, the core of unwinding.
    pub(crate) pcsp: u64,
    /// `pcfile` (u32): file table.
    pub(crate) pcfile: u64,
    /// `pcln` (u32): line table.
    pub(crate) pcln: u64,
    /// `npcdata` (u32).
    pub(crate) npcdata: u64,
    /// `cuOffset` (u32): compilation unit index into `cutab`.
    pub(crate) cu_offset: u64,
    /// `startLine` (i32, Go 1.20+).
    pub(crate) start_line: Option<u64>,
    /// `funcID` (u8): special runtime functions.
    pub(crate) func_id: u64,
    /// `flag` (u8): TopFrame/SPWrite/Asm.
    pub(crate) flag: u64,
    /// `nfuncdata` (u8).
    pub(crate) nfuncdata: u64,
}

/// Offsets in `runtime.pcHeader`, the start of the pclntab.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PcHeaderOffsets {
    /// `sizeof(pcHeader)`.
    pub(crate) size: u64,
    /// `magic` (u32): identifies the pclntab format.
    pub(crate) magic: u64,
    /// `minLC` (u8): PC quantum.
    pub(crate) min_lc: u64,
    /// `ptrSize` (u8).
    pub(crate) ptr_size: u64,
    /// `nfunc` (int).
    pub(crate) nfunc: u64,
    /// `nfiles` (uint).
    pub(crate) nfiles: u64,
    /// `textStart` (uintptr, up to Go 1.25; an unused `_` from 1.26).
    pub(crate) text_start: Option<u64>,
    /// `funcnameOffset` (uintptr).
    pub(crate) funcname_offset: u64,
    /// `cuOffset` (uintptr).
    pub(crate) cu_offset: u64,
    /// `filetabOffset` (uintptr).
    pub(crate) filetab_offset: u64,
    /// `pctabOffset` (uintptr).
    pub(crate) pctab_offset: u64,
    /// `pclnOffset` (uintptr).
    pub(crate) pcln_offset: u64,
}

/// Offsets in `runtime.ancestorInfo`, the element of `*g.ancestors`
/// (`GODEBUG=tracebackancestors=N`): printed as `[originating from
/// goroutine N]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AncestorInfoOffsets {
    /// `sizeof(ancestorInfo)`: the slice stride.
    pub(crate) size: u64,
    /// `pcs` ([]uintptr): the creator's stack.
    pub(crate) pcs: u64,
    /// `goid` (i64/u64): the creator goroutine.
    pub(crate) goid: u64,
    /// `gopc` (uintptr): its `go` statement.
    pub(crate) gopc: u64,
}

/// Every offset gopeek reads from a target, for one binary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuntimeOffsets {
    /// Where the underlying layout came from.
    pub(crate) source: LayoutSource,
    /// `runtime.g`.
    pub g: GOffsets,
    /// `runtime.m`.
    pub m: MOffsets,
    /// `runtime.p`.
    pub p: POffsets,
    /// `runtime.schedt`.
    pub sched: SchedOffsets,
    /// `runtime.moduledata`.
    pub moduledata: ModuledataOffsets,
    /// `runtime._func`.
    pub(crate) func: FuncOffsets,
    /// `runtime.pcHeader`.
    pub(crate) pc_header: PcHeaderOffsets,
    /// `runtime.ancestorInfo`.
    pub(crate) ancestor_info: AncestorInfoOffsets,
}

mod compose;
mod sched;
pub use sched::SchedDetailOffsets;

#[cfg(test)]
mod tests;
