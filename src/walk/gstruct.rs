//! Decoding one `runtime.g` from copied bytes with the version's offsets.

use crate::layout::offsets::GOffsets;

pub(crate) use crate::gotrace::status::{
    G_DEAD, G_DEAD_EXTRA, G_LEAKED, G_PREEMPTED, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING,
};

/// The fields of a g that change whenever its goroutine runs: same
/// goroutine (goid), same status, same saved context and stack bounds,
/// same M, and no transition out of running since (`trackingSeq`, bumped
/// by every one). A goroutine that woke and ran, moved its stack, re-parked,
/// or whose g was reused for a new goroutine differs in at least one of
/// them; the one blind spot is a goroutine that ran a multiple of 256
/// times in between and parked again at the same SP, PC and frame pointer.
///
/// Two reads of a g with equal fingerprints around a read of its stack
/// prove that stack was not written meanwhile: that is how gopeek reads
/// parked goroutines while the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GFingerprint {
    words: [u64; 12],
    status: u32,
    seq: u8,
    waitreason: u8,
}

impl GFingerprint {
    /// The fingerprint of a decoded g.
    pub(crate) fn of(g: &GRecord) -> Self {
        GFingerprint {
            words: [
                g.goid,
                g.stack_lo,
                g.stack_hi,
                g.sched_sp,
                g.sched_pc,
                g.sched_bp,
                g.sched_lr,
                g.syscallsp,
                g.syscallpc,
                g.m,
                g.labels,
                g.lockedm,
            ],
            status: g.status,
            seq: g.tracking_seq,
            waitreason: g.waitreason,
        }
    }

    /// The fingerprint straight from a g's raw bytes, reading only the
    /// fields it needs (this runs for every g while the target is held).
    /// Equal to `of(&GRecord::decode(..))` for the same bytes.
    pub(crate) fn from_bytes(b: &[u8], off: &GOffsets) -> Self {
        let w = |o: u64| word(b, o);
        GFingerprint {
            words: [
                w(off.goid),
                w(off.stack_lo),
                w(off.stack_hi),
                w(off.sched_sp),
                w(off.sched_pc),
                w(off.sched_bp),
                w(off.sched_lr),
                w(off.syscallsp),
                w(off.syscallpc),
                w(off.m),
                w(off.labels),
                w(off.lockedm),
            ],
            status: b
                .get(off.atomicstatus as usize..off.atomicstatus as usize + 4)
                .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4]))),
            seq: off
                .tracking_seq
                .and_then(|o| b.get(o as usize).copied())
                .unwrap_or(0),
            waitreason: b.get(off.waitreason as usize).copied().unwrap_or(0),
        }
    }
}

/// The fields of a `g` the dump uses, decoded from its copied bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct GRecord {
    pub(crate) addr: u64,
    pub(crate) goid: u64,
    /// `atomicstatus` as stored (scan bit included).
    pub(crate) status: u32,
    pub(crate) waitreason: u8,
    pub(crate) waitsince: i64,
    pub(crate) stack_lo: u64,
    pub(crate) stack_hi: u64,
    pub(crate) m: u64,
    pub(crate) sched_sp: u64,
    pub(crate) sched_pc: u64,
    pub(crate) sched_lr: u64,
    pub(crate) sched_g: u64,
    pub(crate) sched_bp: u64,
    pub(crate) syscallsp: u64,
    pub(crate) syscallpc: u64,
    pub(crate) lockedm: u64,
    pub(crate) gopc: u64,
    pub(crate) startpc: u64,
    pub(crate) parent_goid: u64,
    pub(crate) labels: u64,
    /// `g.trackingSeq` (0 where the version has none).
    pub(crate) tracking_seq: u8,
}

pub(crate) fn word(b: &[u8], off: u64) -> u64 {
    let o = off as usize;
    b.get(o..o + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}

/// What a snapshot keeps of a g once its stack is read: the fields Go's
/// header and `created by` line print, and no more (a million goroutines
/// hold a million of these until they are symbolized).
#[derive(Debug, Clone, Default)]
pub(crate) struct GInfo {
    pub(crate) addr: u64,
    pub(crate) goid: u64,
    pub(crate) waitsince: i64,
    pub(crate) gopc: u64,
    pub(crate) startpc: u64,
    pub(crate) parent_goid: u64,
    /// `atomicstatus` as stored (scan bit included).
    pub(crate) status: u32,
    pub(crate) waitreason: u8,
    /// `g.lockedm != 0`: wired to its thread.
    pub(crate) locked: bool,
    /// `g.trackingSeq` (0 where the version has none): tells which read
    /// a record came from (the capture tests check it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) tracking_seq: u8,
}

impl GInfo {
    /// Status without the scan bit.
    pub(crate) fn base_status(&self) -> u32 {
        crate::gotrace::status::base_status(self.status)
    }
}

impl GRecord {
    /// The part of the record a snapshot keeps.
    pub(crate) fn info(&self) -> GInfo {
        GInfo {
            addr: self.addr,
            goid: self.goid,
            waitsince: self.waitsince,
            gopc: self.gopc,
            startpc: self.startpc,
            parent_goid: self.parent_goid,
            status: self.status,
            waitreason: self.waitreason,
            locked: self.lockedm != 0,
            tracking_seq: self.tracking_seq,
        }
    }
}

impl GRecord {
    /// Decodes `bytes` (a copy of `off.size` bytes at `addr`); fields past
    /// the end of a short copy read as zero.
    pub(crate) fn decode(addr: u64, bytes: &[u8], off: &GOffsets) -> GRecord {
        let u32_at = |o: u64| {
            bytes
                .get(o as usize..o as usize + 4)
                .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
                .unwrap_or(0)
        };
        GRecord {
            addr,
            goid: word(bytes, off.goid),
            status: u32_at(off.atomicstatus),
            waitreason: bytes.get(off.waitreason as usize).copied().unwrap_or(0),
            waitsince: word(bytes, off.waitsince) as i64,
            stack_lo: word(bytes, off.stack_lo),
            stack_hi: word(bytes, off.stack_hi),
            m: word(bytes, off.m),
            sched_sp: word(bytes, off.sched_sp),
            sched_pc: word(bytes, off.sched_pc),
            sched_lr: word(bytes, off.sched_lr),
            sched_g: word(bytes, off.sched_g),
            sched_bp: word(bytes, off.sched_bp),
            syscallsp: word(bytes, off.syscallsp),
            syscallpc: word(bytes, off.syscallpc),
            lockedm: word(bytes, off.lockedm),
            gopc: word(bytes, off.gopc),
            startpc: word(bytes, off.startpc),
            parent_goid: off.parent_goid.map(|o| word(bytes, o)).unwrap_or(0),
            labels: word(bytes, off.labels),
            tracking_seq: off
                .tracking_seq
                .and_then(|o| bytes.get(o as usize).copied())
                .unwrap_or(0),
        }
    }

    /// How many bytes from the start of a g [`GRecord::decode`] looks at:
    /// the copy taken while the target is held stops there (a Go 1.27 g is
    /// 456 bytes, of which the walker needs the first ~360).
    pub(crate) fn bytes_needed(off: &GOffsets) -> u64 {
        let words = [
            off.goid,
            off.waitsince,
            off.stack_lo,
            off.stack_hi,
            off.m,
            off.sched_sp,
            off.sched_pc,
            off.sched_lr,
            off.sched_g,
            off.sched_bp,
            off.syscallsp,
            off.syscallpc,
            off.lockedm,
            off.gopc,
            off.startpc,
            off.labels,
            off.parent_goid.unwrap_or(0),
        ];
        let end = words
            .iter()
            .map(|o| o + 8)
            .max()
            .unwrap_or(0)
            .max(off.atomicstatus + 4)
            .max(off.waitreason + 1)
            .max(off.tracking_seq.map_or(0, |o| o + 1));
        end.min(off.size)
    }

    /// `true` when `other` (the same g read again later) shows the
    /// goroutine in the same state (see [`GFingerprint`]).
    pub(crate) fn same_state(&self, other: &GRecord) -> bool {
        self.addr == other.addr && GFingerprint::of(self) == GFingerprint::of(other)
    }

    /// `true` for a goroutine that is off every thread (waiting, runnable,
    /// preempted, leaked): its stack cannot change until it runs, which
    /// [`Self::same_state`] would see. A copy of it read while the process
    /// ran is as good as one read while it was stopped.
    pub(crate) fn is_off_cpu(&self) -> bool {
        matches!(
            self.base_status(),
            G_RUNNABLE | G_WAITING | G_PREEMPTED | G_LEAKED
        )
    }

    /// Status without the scan bit.
    pub(crate) fn base_status(&self) -> u32 {
        crate::gotrace::status::base_status(self.status)
    }

    /// Go's tracebacks skip these.
    pub(crate) fn is_dead(&self) -> bool {
        matches!(self.base_status(), G_DEAD | G_DEAD_EXTRA)
    }

    /// Cheap sanity check that the bytes really are a g: the runtime keeps
    /// `g.sched.g == g` for every g, and a live stack has `lo < hi`.
    pub(crate) fn looks_valid(&self) -> bool {
        (self.sched_g == self.addr || self.sched_g == 0)
            && (self.is_dead()
                || (self.stack_lo < self.stack_hi && self.stack_hi - self.stack_lo <= 1 << 30))
    }
}
