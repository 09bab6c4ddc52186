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
    pub stack_lo: u64,
    /// `g.stack.hi` (uintptr): top of the goroutine stack.
    pub stack_hi: u64,
    /// `g.m` (*m): the M running this g (nil when parked); gives the thread
    /// (`m.procid`) whose registers hold a running g's PC/SP.
    pub m: u64,
    /// `g.sched.sp`: saved SP of a g that is not running; where unwinding of
    /// a parked goroutine starts.
    pub sched_sp: u64,
    /// `g.sched.pc`: saved PC that goes with `sched_sp`.
    pub sched_pc: u64,
    /// `g.sched.g` (guintptr): points back at the g itself; the strongest
    /// invariant for validating a g pointer and the offsets.
    pub sched_g: u64,
    /// `g.sched.lr`: saved link register (arm64 unwinding of the innermost
    /// frame).
    pub sched_lr: u64,
    /// `g.sched.bp`: saved frame pointer (frame-pointer unwinding).
    pub sched_bp: u64,
    /// `g.syscallsp` (uintptr): non-zero while the g is in a syscall or cgo
    /// call; Go's own traceback then starts from `syscallpc/syscallsp`.
    pub syscallsp: u64,
    /// `g.syscallpc` (uintptr): PC that goes with `syscallsp`.
    pub syscallpc: u64,
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
    pub schedlink: u64,
    /// `g.waitsince` (i64, nanotime): when the g blocked, for `N minutes`
    /// (set only by a GC's stack scan).
    pub waitsince: u64,
    /// `g.waitreason` (u8): index into the wait-reason table
    /// (`chan receive`, `IO wait`, ...).
    pub waitreason: u64,
    /// `g.lockedm` (muintptr): non-zero → `, locked to thread`.
    pub lockedm: u64,
    /// `g.trackingSeq` (u8, Go 1.17+): bumped by every transition out of
    /// running; part of the fingerprint that tells a goroutine read while
    /// the process ran from one that ran (and maybe re-parked) meanwhile.
    pub tracking_seq: Option<u64>,
    /// `g.parentGoid` (u64, Go 1.21+): printed as `created by ... in
    /// goroutine N`.
    pub parent_goid: Option<u64>,
    /// `g.gopc` (uintptr): PC of the `go` statement, for the `created by`
    /// line.
    pub gopc: u64,
    /// `g.ancestors` (*[]ancestorInfo): creator stacks recorded with
    /// `GODEBUG=tracebackancestors=N`.
    pub ancestors: u64,
    /// `g.startpc` (uintptr): the goroutine's function; decides whether it is
    /// a system goroutine that Go's traceback hides.
    pub startpc: u64,
    /// `g.labels` (unsafe.Pointer): pprof labels, shown in the dump and in
    /// 1.26+ headers.
    pub labels: u64,
    /// `g.timer` (*timer): the sleep timer of a g in `time.Sleep`.
    pub timer: Option<u64>,
    /// `g.bubble` (*synctestBubble, Go 1.25+): non-nil inside a
    /// `testing/synctest` bubble; header `, synctest bubble N`.
    pub bubble: Option<u64>,
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
    pub g0: u64,
    /// `m.morebuf.sp`: caller SP saved by `morestack`, to unwind a g caught
    /// growing its stack.
    pub morebuf_sp: u64,
    /// `m.morebuf.pc`: caller PC saved by `morestack`.
    pub morebuf_pc: u64,
    /// `m.procid` (u64): the Linux TID (m0's is the PID); links an M to the
    /// thread whose registers ptrace returns.
    pub procid: u64,
    /// `m.gsignal` (*g): the signal-handling g, to recognize a thread
    /// interrupted in a signal handler.
    pub gsignal: u64,
    /// `m.curg` (*g): the user g this thread runs, if any.
    pub curg: u64,
    /// `m.p` (puintptr): the P this M holds.
    pub p: u64,
    /// `m.id` (i64): the M number Go prints (`m=N`).
    pub id: u64,
    /// `m.mallocing` (i32): non-zero inside the allocator (a snapshot may
    /// see half-built objects).
    pub mallocing: u64,
    /// `m.throwing` (i32 in 1.19, u8 `throwType` from 1.21): the process is
    /// dying in a runtime throw.
    pub throwing: u64,
    /// `m.preemptoff` (string header): why preemption is disabled, shown by
    /// `gopeek sched` like `scheddetail`.
    pub preemptoff: u64,
    /// `m.locks` (i32): runtime locks held.
    pub locks: u64,
    /// `m.dying` (i32): panic/throw in progress on this M.
    pub dying: u64,
    /// `m.spinning` (bool): looking for work.
    pub spinning: u64,
    /// `m.blocked` (bool): parked on a note.
    pub blocked: u64,
    /// `m.incgo` (bool): executing a cgo call (C frames on g0).
    pub incgo: u64,
    /// `m.isextra` (bool, Go 1.21+): an extra M created for a C thread
    /// calling into Go.
    pub isextra: Option<u64>,
    /// `m.ncgo` (i32): cgo calls in progress.
    pub ncgo: u64,
    /// `m.alllink` (*m): next M on the `allm` list (m0 is last).
    pub alllink: u64,
    /// `m.schedlink` (muintptr): next M on a scheduler list.
    pub schedlink: u64,
    /// Where an idle M keeps the pointer to the next idle M on
    /// `sched.midle`: `m.schedlink` up to Go 1.25, `m.idleNode.next`
    /// (`listNodeManual`) from 1.26.
    pub idle_next: u64,
    /// `m.lockedg` (guintptr): the g locked to this thread.
    pub lockedg: u64,
    /// `m.libcallpc` (uintptr): PC of a libcall in progress (Go's traceback
    /// uses it for a g interrupted in one).
    pub libcallpc: u64,
    /// `m.libcallsp` (uintptr): SP that goes with `libcallpc`.
    pub libcallsp: u64,
    /// `m.libcallg` (guintptr): the g that made the libcall.
    pub libcallg: u64,
    /// `m.vdsoSP` (uintptr): non-zero while in a vDSO call; Go's traceback
    /// then starts from `vdsoPC/vdsoSP`.
    pub vdso_sp: u64,
    /// `m.vdsoPC` (uintptr): PC that goes with `vdso_sp`.
    pub vdso_pc: u64,
}

/// Offsets in `runtime.p`, a scheduler processor: for `gopeek sched` (run
/// queues, status) and to tell which g runs where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct POffsets {
    /// `sizeof(p)` (differs between amd64 and arm64 from Go 1.26).
    pub size: u64,
    /// `p.id` (i32): the P number.
    pub id: u64,
    /// `p.status` (u32): `_Pidle`, `_Prunning`, ...
    pub status: u64,
    /// `p.link` (puintptr): next P on the idle list.
    pub link: u64,
    /// `p.schedtick` (u32): scheduler calls, for `schedtrace`-style output.
    pub schedtick: u64,
    /// `p.syscalltick` (u32): syscalls, likewise.
    pub syscalltick: u64,
    /// `p.m` (muintptr): the M holding this P.
    pub m: u64,
    /// `p.runqhead` (u32): local run queue head index.
    pub runqhead: u64,
    /// `p.runqtail` (u32): local run queue tail index.
    pub runqtail: u64,
    /// `p.runq` ([`P_RUNQ_LEN`]guintptr): the local run queue ring.
    pub runq: u64,
    /// `p.runnext` (guintptr): the g to run next, ahead of the queue.
    pub runnext: u64,
}

/// Entries in `p.runq` (`[256]guintptr` in every supported version).
pub const P_RUNQ_LEN: u64 = 256;

/// Offsets in `runtime.schedt` (the global `runtime.sched`): global run
/// queue, idle lists and stop-the-world state for `gopeek sched`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SchedOffsets {
    /// `sizeof(schedt)`.
    pub size: u64,
    /// `sched.goidgen` (u64): the last goroutine id handed out.
    pub goidgen: u64,
    /// `sched.lock` (mutex): non-zero while held (a snapshot taken then may
    /// see lists mid-update).
    pub lock: u64,
    /// The head of the idle-M list: `sched.midle` (muintptr) up to Go
    /// 1.25, `sched.midle.obj` (`listHeadManual`) from 1.26. Follow it with
    /// [`MOffsets::idle_next`]. Also the anchor the locator uses to find
    /// `runtime.sched` (`mput` stores here).
    pub midle: u64,
    /// `sched.nmidle` (i32): idle Ms.
    pub nmidle: u64,
    /// `sched.nmidlelocked` (i32): locked Ms waiting for their g.
    pub nmidlelocked: u64,
    /// `sched.mnext` (i64): Ms created so far (= next M id).
    pub mnext: u64,
    /// `sched.maxmcount` (i32): thread limit.
    pub maxmcount: u64,
    /// `sched.nmsys` (i32): system Ms not counted for deadlock.
    pub nmsys: u64,
    /// `sched.nmfreed` (i64): Ms freed; `threads = mnext - nmfreed`.
    pub nmfreed: u64,
    /// `sched.ngsys` (u32/i32): system goroutines.
    pub ngsys: u64,
    /// `sched.pidle` (puintptr): idle P list, linked by `p.link`.
    pub pidle: u64,
    /// `sched.npidle` (u32/i32): idle Ps.
    pub npidle: u64,
    /// `sched.nmspinning` (u32/i32): spinning Ms.
    pub nmspinning: u64,
    /// `sched.needspinning` (u32, Go 1.21+).
    pub needspinning: Option<u64>,
    /// `sched.runq.head` (guintptr): global run queue, linked by
    /// `g.schedlink`.
    pub runq_head: u64,
    /// `sched.runq.tail` (guintptr).
    pub runq_tail: u64,
    /// Length of the global run queue (i32): `sched.runqsize` up to Go
    /// 1.24, `sched.runq.size` (gQueue) from 1.25.
    pub runq_size: u64,
    /// `sched.gcwaiting` (u32 in 1.19, one-byte atomic.Bool from 1.21; read
    /// one byte): a stop-the-world is pending.
    pub gcwaiting: u64,
    /// `sched.stopwait` (i32): Ps the stop-the-world still waits for.
    pub stopwait: u64,
    /// `sched.sysmonwait` (u32 in 1.19, atomic.Bool from 1.21; read one
    /// byte): sysmon is asleep.
    pub sysmonwait: u64,
}

/// Offsets in `runtime.moduledata` (`runtime.firstmoduledata`): where the
/// pclntab pieces, text and data ranges of the executable are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModuledataOffsets {
    /// `sizeof(moduledata)`.
    pub size: u64,
    /// `pcHeader` (*pcHeader): the pclntab; also how the locator recognizes
    /// moduledata (its first word).
    pub pc_header: u64,
    /// `funcnametab` ([]byte): function names.
    pub funcnametab: u64,
    /// `cutab` ([]uint32): per-compilation-unit file indexes.
    pub cutab: u64,
    /// `filetab` ([]byte): file names.
    pub filetab: u64,
    /// `pctab` ([]byte): pc-value tables.
    pub pctab: u64,
    /// `pclntable` ([]byte): functab and `_func` records.
    pub pclntable: u64,
    /// `ftab` ([]functab): the function table.
    pub ftab: u64,
    /// `findfunctab` (uintptr): the PC → function bucket accelerator.
    pub findfunctab: u64,
    /// `minpc` (uintptr).
    pub minpc: u64,
    /// `maxpc` (uintptr).
    pub maxpc: u64,
    /// `text` (uintptr): base of every `entryoff` (pcHeader.textStart is 0
    /// from Go 1.26).
    pub text: u64,
    /// `etext` (uintptr).
    pub etext: u64,
    /// `noptrdata` (uintptr).
    pub noptrdata: u64,
    /// `enoptrdata` (uintptr).
    pub enoptrdata: u64,
    /// `data` (uintptr).
    pub data: u64,
    /// `edata` (uintptr).
    pub edata: u64,
    /// `bss` (uintptr).
    pub bss: u64,
    /// `ebss` (uintptr).
    pub ebss: u64,
    /// `noptrbss` (uintptr).
    pub noptrbss: u64,
    /// `enoptrbss` (uintptr).
    pub enoptrbss: u64,
    /// `end` (uintptr).
    pub end: u64,
    /// `types` (uintptr): start of type data.
    pub types: u64,
    /// `etypes` (uintptr).
    pub etypes: u64,
    /// `rodata` (uintptr).
    pub rodata: u64,
    /// `gofunc` (uintptr): base of funcdata offsets (inline trees); it cannot
    /// be derived from the pcHeader.
    pub gofunc: u64,
    /// `epclntab` (uintptr, Go 1.26+).
    pub epclntab: Option<u64>,
    /// `textsectmap` ([]textsect): split text sections (not used on linux
    /// amd64/arm64, but read to check).
    pub textsectmap: u64,
    /// `modulename` (string).
    pub modulename: u64,
    /// `next` (*moduledata): the next module (plugins).
    pub next: u64,
}

/// Offsets in `runtime._func`, the per-function pclntab record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FuncOffsets {
    /// `sizeof(_func)`: the `pcdata[npcdata]` array starts here (40 bytes in
    /// 1.19, 44 from 1.20), followed by `funcdata[nfuncdata]`.
    pub size: u64,
    /// `entryoff`/`entryOff` (u32): entry PC minus `moduledata.text`.
    pub entry_off: u64,
    /// `nameoff`/`nameOff` (i32): offset in `funcnametab`.
    pub name_off: u64,
    /// `args` (i32): argument size.
    pub args: u64,
    /// `deferreturn` (u32).
    pub deferreturn: u64,
    /// `pcsp` (u32): the SP-delta table, the core of unwinding.
    pub pcsp: u64,
    /// `pcfile` (u32): file table.
    pub pcfile: u64,
    /// `pcln` (u32): line table.
    pub pcln: u64,
    /// `npcdata` (u32).
    pub npcdata: u64,
    /// `cuOffset` (u32): compilation unit index into `cutab`.
    pub cu_offset: u64,
    /// `startLine` (i32, Go 1.20+).
    pub start_line: Option<u64>,
    /// `funcID` (u8): special runtime functions.
    pub func_id: u64,
    /// `flag` (u8): TopFrame/SPWrite/Asm.
    pub flag: u64,
    /// `nfuncdata` (u8).
    pub nfuncdata: u64,
}

/// Offsets in `runtime.pcHeader`, the start of the pclntab.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PcHeaderOffsets {
    /// `sizeof(pcHeader)`.
    pub size: u64,
    /// `magic` (u32): identifies the pclntab format.
    pub magic: u64,
    /// `minLC` (u8): PC quantum.
    pub min_lc: u64,
    /// `ptrSize` (u8).
    pub ptr_size: u64,
    /// `nfunc` (int).
    pub nfunc: u64,
    /// `nfiles` (uint).
    pub nfiles: u64,
    /// `textStart` (uintptr, up to Go 1.25; an unused `_` from 1.26).
    pub text_start: Option<u64>,
    /// `funcnameOffset` (uintptr).
    pub funcname_offset: u64,
    /// `cuOffset` (uintptr).
    pub cu_offset: u64,
    /// `filetabOffset` (uintptr).
    pub filetab_offset: u64,
    /// `pctabOffset` (uintptr).
    pub pctab_offset: u64,
    /// `pclnOffset` (uintptr).
    pub pcln_offset: u64,
}

/// Offsets in `runtime.ancestorInfo`, the element of `*g.ancestors`
/// (`GODEBUG=tracebackancestors=N`): printed as `[originating from
/// goroutine N]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AncestorInfoOffsets {
    /// `sizeof(ancestorInfo)`: the slice stride.
    pub size: u64,
    /// `pcs` ([]uintptr): the creator's stack.
    pub pcs: u64,
    /// `goid` (i64/u64): the creator goroutine.
    pub goid: u64,
    /// `gopc` (uintptr): its `go` statement.
    pub gopc: u64,
}

/// Every offset gopeek reads from a target, for one binary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuntimeOffsets {
    /// Where the underlying layout came from.
    pub source: LayoutSource,
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
    pub func: FuncOffsets,
    /// `runtime.pcHeader`.
    pub pc_header: PcHeaderOffsets,
    /// `runtime.ancestorInfo`.
    pub ancestor_info: AncestorInfoOffsets,
}

mod compose;

#[cfg(test)]
mod tests;
