//! The globals `gopeek sched` needs beyond `allgs`/`allm`/`allp`/`sched`:
//! `gomaxprocs`, `starttime`, `runtimeInitTime`, `gcphase`, `worldsema`,
//! `gcsema`, `work`, `memstats`, `gcController`; from `.symtab` when there
//! is one, else by decoding a few small runtime functions whose shape has
//! been stable from Go 1.19 to 1.27 (see `../shared/go-runtime/sched.md`
//! §3.6 and the info matrix test, which checks every route against `nm`).
//!
//! The patterns, in runtime source terms:
//! * `runtime.GOMAXPROCS`: `ret := int(gomaxprocs)` is the first 32-bit
//!   sign-extending load of a global;
//! * `runtime.schedtrace`: `if starttime == 0 { starttime = now }` is a
//!   64-bit `cmp $0` of a global followed by a store to the same address;
//! * `runtime.main`: `runtimeInitTime = nanotime()` is the first 64-bit
//!   store to a global after a call to `runtime.nanotime*`;
//! * `runtime.gcStart`: `semacquire(&work.startSema)`,
//!   `semacquire(&gcsema)`, `semacquire(&worldsema)`: the addresses loaded
//!   (`lea`) into the first argument register before the three calls to
//!   `runtime.semacquire1` (`runtime.semacquire` without inlining), in
//!   that order;
//! * `runtime.gcMarkDone`: `if gcphase != _GCmark` is a 32-bit `cmp $1` of
//!   a global.
//!
//! `memstats` and `gcController` have no such small, stable user in a
//! stripped binary; they are found from `.symtab` only (the GC figures of
//! `gopeek sched` are then left out and said so).

use super::elf::{Arch, GoBinary};
use super::locate::{LocateMethod, Located};
use super::moduledata::ModuleData;
use super::pclntab::Pclntab;
use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

/// The scheduler and GC globals; `None` where no route worked.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SchedGlobals {
    /// `runtime.gomaxprocs` (int32).
    pub gomaxprocs: Option<Located>,
    /// `runtime.starttime` (int64, nanotime of the first schedtrace; 0 if
    /// the target never traced).
    pub starttime: Option<Located>,
    /// `runtime.runtimeInitTime` (int64 nanotime when `runtime.main`
    /// started): the base of `SCHED <N>ms` when `starttime` is 0.
    pub runtime_init_time: Option<Located>,
    /// `runtime.gcphase` (uint32).
    pub gcphase: Option<Located>,
    /// `runtime.worldsema` (uint32; 0 while a stop-the-world owns it).
    pub worldsema: Option<Located>,
    /// `runtime.gcsema` (uint32; 0 for the length of a GC cycle).
    pub gcsema: Option<Located>,
    /// `runtime.work` (workType): GC phase timestamps and cycle count.
    pub work: Option<Located>,
    /// `runtime.memstats` (mstats): `numgc`.
    pub memstats: Option<Located>,
    /// `runtime.gcController` (gcControllerState): GOGC, memory limit,
    /// heap live and goal.
    pub gc_controller: Option<Located>,
}

/// One decoded instruction, reduced to what the patterns look at.
#[derive(Debug, Clone, Copy)]
struct Ins {
    mnemonic: Mnemonic,
    /// RIP-relative memory operand's address, if any.
    target: Option<u64>,
    /// The memory operand is the destination.
    is_store: bool,
    /// Size of the memory operand in bytes.
    mem_size: usize,
    /// First immediate operand, if any.
    imm: Option<u64>,
    /// Destination register of a `lea`/load.
    dst: Register,
    /// Direct call target.
    call: Option<u64>,
}

/// Longest function body decoded.
const MAX_DECODE: u64 = 64 * 1024;

fn decode(bin: &GoBinary, tab: &Pclntab<'_>, name: &str) -> Vec<Ins> {
    let Some(f) = tab.func_by_name(name) else {
        return Vec::new();
    };
    let Some(len) = f.end.checked_sub(f.entry) else {
        return Vec::new();
    };
    let Some(code) = bin.slice_at_vaddr(f.entry, len.min(MAX_DECODE) as usize) else {
        return Vec::new();
    };
    let mut dec = Decoder::with_ip(64, code, f.entry, DecoderOptions::NONE);
    let mut ins = Instruction::default();
    let mut out = Vec::new();
    while dec.can_decode() {
        dec.decode_out(&mut ins);
        if ins.is_invalid() {
            continue;
        }
        let rel = ins.is_ip_rel_memory_operand();
        let is_store = ins.op_count() > 0 && ins.op0_kind() == OpKind::Memory;
        let imm = (0..ins.op_count()).find_map(|i| match ins.op_kind(i) {
            OpKind::Immediate8
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32
            | OpKind::Immediate32to64 => Some(ins.immediate(i)),
            _ => None,
        });
        let dst = if ins.op_count() > 0 && ins.op0_kind() == OpKind::Register {
            ins.op0_register().full_register()
        } else {
            Register::None
        };
        let call = (ins.mnemonic() == Mnemonic::Call && ins.op0_kind() == OpKind::NearBranch64)
            .then(|| ins.near_branch_target());
        out.push(Ins {
            mnemonic: ins.mnemonic(),
            target: rel.then(|| ins.ip_rel_memory_address()),
            is_store,
            mem_size: if rel { ins.memory_size().size() } else { 0 },
            imm,
            dst,
            call,
        });
    }
    out
}

/// Name of the function a call lands in, if it is a function entry.
fn callee(tab: &Pclntab<'_>, target: u64) -> Option<String> {
    let f = tab.find_func(target).ok()?;
    (f.entry == target).then(|| f.name())
}

/// `gomaxprocs` from `runtime.GOMAXPROCS`.
fn gomaxprocs(code: &[Ins], in_data: &dyn Fn(u64) -> bool) -> Option<u64> {
    code.iter()
        .find(|i| i.mnemonic == Mnemonic::Movsxd && !i.is_store && i.mem_size == 4)
        .and_then(|i| i.target)
        .filter(|&a| in_data(a))
}

/// `starttime` from `runtime.schedtrace`.
fn starttime(code: &[Ins], in_data: &dyn Fn(u64) -> bool) -> Option<u64> {
    code.iter().enumerate().find_map(|(k, i)| {
        let t = i.target.filter(|&a| in_data(a))?;
        let is_zero_test = i.mnemonic == Mnemonic::Cmp && i.mem_size == 8 && i.imm == Some(0);
        let stored_later = code[k + 1..]
            .iter()
            .take(8)
            .any(|j| j.mnemonic == Mnemonic::Mov && j.is_store && j.target == Some(t));
        (is_zero_test && stored_later).then_some(t)
    })
}

/// `runtimeInitTime` from `runtime.main`.
fn runtime_init_time(
    code: &[Ins],
    tab: &Pclntab<'_>,
    in_data: &dyn Fn(u64) -> bool,
) -> Option<u64> {
    let after = code.iter().position(|i| {
        i.call
            .and_then(|t| callee(tab, t))
            .is_some_and(|n| n.starts_with("runtime.nanotime"))
    })?;
    code[after + 1..]
        .iter()
        .take(12)
        .find(|i| i.mnemonic == Mnemonic::Mov && i.is_store && i.mem_size == 8)
        .and_then(|i| i.target)
        .filter(|&a| in_data(a))
}

/// The `lea` targets loaded into RAX before each call to
/// `runtime.semacquire1` in `runtime.gcStart`, in order.
fn semacquire_args(code: &[Ins], tab: &Pclntab<'_>, in_data: &dyn Fn(u64) -> bool) -> Vec<u64> {
    let mut out = Vec::new();
    let mut rax: Option<u64> = None;
    for i in code {
        if let Some(t) = i.call {
            let name = callee(tab, t);
            if matches!(
                name.as_deref(),
                Some("runtime.semacquire1" | "runtime.semacquire")
            ) {
                if let Some(a) = rax.filter(|&a| in_data(a)) {
                    out.push(a);
                }
            }
            rax = None;
            continue;
        }
        if i.dst == Register::RAX {
            rax = match (i.mnemonic, i.target) {
                (Mnemonic::Lea, Some(t)) => Some(t),
                _ => None,
            };
        }
    }
    out
}

/// `gcphase` from `runtime.gcMarkDone`.
fn gcphase(code: &[Ins], in_data: &dyn Fn(u64) -> bool) -> Option<u64> {
    code.iter()
        .find(|i| i.mnemonic == Mnemonic::Cmp && i.mem_size == 4 && i.imm == Some(1))
        .and_then(|i| i.target)
        .filter(|&a| in_data(a))
}

/// Finds every [`SchedGlobals`] entry. `work_start_sema` is the offset of
/// `workType.startSema` for the target's version (from its layout): with
/// it, `&work.startSema` gives `&work`.
pub(crate) fn locate_sched_globals(
    bin: &GoBinary,
    tab: &Pclntab<'_>,
    md: Option<&ModuleData>,
    work_start_sema: Option<u64>,
) -> SchedGlobals {
    let sym = |name: &str| {
        bin.symbol(name).filter(|&a| a != 0).map(|addr| Located {
            addr,
            how: LocateMethod::Symtab,
        })
    };
    let mut g = SchedGlobals {
        gomaxprocs: sym("runtime.gomaxprocs"),
        starttime: sym("runtime.starttime"),
        runtime_init_time: sym("runtime.runtimeInitTime"),
        gcphase: sym("runtime.gcphase"),
        worldsema: sym("runtime.worldsema"),
        gcsema: sym("runtime.gcsema"),
        work: sym("runtime.work"),
        memstats: sym("runtime.memstats"),
        gc_controller: sym("runtime.gcController"),
    };
    if bin.arch() != Arch::Amd64 {
        return g;
    }
    let in_data = |a: u64| match md {
        Some(md) => md.is_global_data(a),
        None => bin.segment_of(a).map(|s| s.writable).unwrap_or(false),
    };
    let found = |addr: Option<u64>, function: &str| {
        addr.map(|addr| Located {
            addr,
            how: LocateMethod::Disassembly {
                function: function.to_string(),
            },
        })
    };
    if g.gomaxprocs.is_none() {
        let f = "runtime.GOMAXPROCS";
        g.gomaxprocs = found(gomaxprocs(&decode(bin, tab, f), &in_data), f);
    }
    if g.starttime.is_none() {
        let f = "runtime.schedtrace";
        g.starttime = found(starttime(&decode(bin, tab, f), &in_data), f);
    }
    if g.runtime_init_time.is_none() {
        let f = "runtime.main";
        g.runtime_init_time = found(runtime_init_time(&decode(bin, tab, f), tab, &in_data), f);
    }
    if g.gcphase.is_none() {
        let f = "runtime.gcMarkDone";
        g.gcphase = found(gcphase(&decode(bin, tab, f), &in_data), f);
    }
    if g.worldsema.is_none() || g.gcsema.is_none() || g.work.is_none() {
        let f = "runtime.gcStart";
        let args = semacquire_args(&decode(bin, tab, f), tab, &in_data);
        // Exactly the three semaphores, or the pattern is not the one
        // described above and nothing is claimed.
        if let [start_sema, gcsema, worldsema] = args[..] {
            if g.work.is_none() {
                let work = work_start_sema.and_then(|off| start_sema.checked_sub(off));
                g.work = found(work, f);
            }
            if g.gcsema.is_none() {
                g.gcsema = found(Some(gcsema), f);
            }
            if g.worldsema.is_none() {
                g.worldsema = found(Some(worldsema), f);
            }
        }
    }
    g
}
