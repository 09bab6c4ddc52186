//! Finding the runtime's globals (`allgs`, `allglen`, `allm`, `allp`,
//! `sched`, `waitReasonStrings`) with or without a symbol table.
//!
//! A stripped binary (`-ldflags='-s -w'`) has no `.symtab` and no DWARF,
//! which is where Delve and gdb give up. Its pclntab still names every
//! runtime function, and a few of them are tiny and stable across releases:
//! `runtime.forEachG` loads `allgs.ptr` and `allgs.len` with two
//! RIP-relative moves, `runtime.allgadd` atomically stores `allglen`, and
//! so on. Decoding those few instructions gives the addresses exactly.

use crate::binary::elf::{Arch, GoBinary};
use crate::binary::moduledata::ModuleData;
use crate::binary::pclntab::Pclntab;
use crate::memory::MemoryExt;
use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use std::collections::HashMap;

/// How a global's address was obtained, shown by `gopeek info`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub(crate) enum LocateMethod {
    /// From `.symtab`.
    Symtab,
    /// From decoding the named runtime function's instructions.
    Disassembly { function: String },
}

impl std::fmt::Display for LocateMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocateMethod::Symtab => f.write_str("symbol table"),
            LocateMethod::Disassembly { function } => write!(f, "disassembly of {function}"),
        }
    }
}

/// A global's link-time address and how it was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Located {
    pub addr: u64,
    pub(crate) how: LocateMethod,
}

/// The runtime globals gopeek reads; `None` where no route worked.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RuntimeGlobals {
    pub allgs: Option<Located>,
    pub(crate) allglen: Option<Located>,
    pub allm: Option<Located>,
    pub allp: Option<Located>,
    pub sched: Option<Located>,
    pub(crate) wait_reason_strings: Option<Located>,
    /// Entries in `waitReasonStrings` (the array length).
    pub(crate) wait_reason_count: Option<u64>,
    /// The scheduler and GC globals of `gopeek sched` (found once the
    /// layout is known: `work` needs `workType.startSema`).
    #[serde(flatten)]
    pub sched_extra: crate::binary::locate_sched::SchedGlobals,
}

/// Offsets of `schedt.midle` and `schedt.nmidle`, needed to turn the
/// addresses `runtime.mput` touches back into `&sched`.
#[derive(Debug, Clone, Copy)]
pub struct SchedHint {
    pub(crate) midle: u64,
    pub(crate) nmidle: u64,
    /// `schedt.lock`, which `mput` also touches when inlining is off (it
    /// asserts the lock is held); scoring it disambiguates neighbours.
    pub(crate) lock: u64,
}

/// A memory operand whose address is known statically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StaticRef {
    mnemonic: Mnemonic,
    target: u64,
    /// The operand is the destination (a store) rather than a source.
    is_store: bool,
    /// Size in bytes of the register loaded or stored (0 if none).
    reg_size: usize,
}

/// What decoding one function yields: every RIP-relative reference, the
/// targets of atomic stores (`xchg` through a register set by `lea`), and
/// immediates compared against.
#[derive(Debug, Default)]
struct Decoded {
    refs: Vec<StaticRef>,
    atomic_stores: Vec<u64>,
    cmp_imms: Vec<u64>,
}

/// Longest function body decoded; the functions used are a few hundred bytes.
const MAX_DECODE: u64 = 64 * 1024;

fn decode(bin: &GoBinary, tab: &Pclntab<'_>, name: &str) -> Option<Decoded> {
    let f = tab.func_by_name(name)?;
    let len = f.end.checked_sub(f.entry)?.min(MAX_DECODE);
    let code = bin.slice_at_vaddr(f.entry, len as usize)?;
    let mut dec = Decoder::with_ip(64, code, f.entry, DecoderOptions::NONE);
    let mut ins = Instruction::default();
    let mut regs: HashMap<Register, u64> = HashMap::new();
    let mut out = Decoded::default();
    while dec.can_decode() {
        dec.decode_out(&mut ins);
        if ins.is_invalid() {
            continue;
        }
        let m = ins.mnemonic();
        if ins.is_ip_rel_memory_operand() {
            let target = ins.ip_rel_memory_address();
            let is_store = ins.op_count() > 0 && ins.op0_kind() == OpKind::Memory;
            let reg = if is_store && ins.op_count() > 1 && ins.op1_kind() == OpKind::Register {
                ins.op1_register()
            } else if !is_store && ins.op_count() > 0 && ins.op0_kind() == OpKind::Register {
                ins.op0_register()
            } else {
                Register::None
            };
            out.refs.push(StaticRef {
                mnemonic: m,
                target,
                is_store,
                reg_size: reg.size(),
            });
            if m == Mnemonic::Lea {
                regs.insert(ins.op0_register().full_register(), target);
                continue;
            }
            if m == Mnemonic::Xchg {
                out.atomic_stores.push(target);
            }
        } else if m == Mnemonic::Xchg {
            // xchg [reg+disp], r  (either operand order)
            for i in 0..ins.op_count() {
                if ins.op_kind(i) == OpKind::Memory && ins.memory_index() == Register::None {
                    if let Some(base) = regs.get(&ins.memory_base().full_register()) {
                        out.atomic_stores
                            .push(base.wrapping_add(ins.memory_displacement64()));
                    }
                }
            }
        }
        // Without inlining (-gcflags=all=-l) `atomicstorep(&x, v)` is a
        // call with &x in RAX (ABIInternal's first argument register).
        if m == Mnemonic::Call && ins.op0_kind() == OpKind::NearBranch64 {
            let callee = ins.near_branch_target();
            if let (Ok(f), Some(&arg0)) = (tab.find_func(callee), regs.get(&Register::RAX)) {
                if f.entry == callee && is_pointer_store(&f.name()) {
                    out.atomic_stores.push(arg0);
                }
            }
            regs.clear();
            continue;
        }
        if m == Mnemonic::Cmp
            && ins.op_count() == 2
            && matches!(
                ins.op1_kind(),
                OpKind::Immediate8
                    | OpKind::Immediate8to32
                    | OpKind::Immediate8to64
                    | OpKind::Immediate32
                    | OpKind::Immediate32to64
            )
        {
            out.cmp_imms.push(ins.immediate(1));
        }
        // Any other write to a register forgets its constant.
        if ins.op_count() > 0 && ins.op0_kind() == OpKind::Register {
            regs.remove(&ins.op0_register().full_register());
        }
    }
    Some(out)
}

/// Runtime functions that atomically store a pointer through their first
/// argument (inlined into their callers unless inlining is off).
fn is_pointer_store(name: &str) -> bool {
    matches!(
        name,
        "runtime.atomicstorep"
            | "runtime/internal/atomic.StorepNoWB"
            | "internal/runtime/atomic.StorepNoWB"
    )
}

/// Addresses `X` such that the function loads both `[X]` and `[X+8]`: the
/// pointer and length words of a slice, both into 64-bit registers (a
/// 32-bit load of `X+8` is some other struct's int32 field).
fn slice_loads(d: &Decoded) -> Vec<u64> {
    let loads: Vec<u64> = d
        .refs
        .iter()
        .filter(|r| r.mnemonic == Mnemonic::Mov && !r.is_store && r.reg_size == 8)
        .map(|r| r.target)
        .collect();
    let mut out = Vec::new();
    for &x in &loads {
        if loads.contains(&(x + 8)) && !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// Locates every global gopeek needs. `md` narrows candidates to the
/// module's data and bss; `sched` enables finding `runtime.sched`.
pub(crate) fn locate_globals(
    bin: &GoBinary,
    tab: &Pclntab<'_>,
    md: Option<&ModuleData>,
    sched: Option<SchedHint>,
) -> RuntimeGlobals {
    let mut g = RuntimeGlobals::default();
    let sym = |name: &str| {
        bin.symbol(name).filter(|&a| a != 0).map(|addr| Located {
            addr,
            how: LocateMethod::Symtab,
        })
    };
    g.allgs = sym("runtime.allgs");
    g.allglen = sym("runtime.allglen");
    g.allm = sym("runtime.allm");
    g.allp = sym("runtime.allp");
    g.sched = sym("runtime.sched");
    g.wait_reason_strings = sym("runtime.waitReasonStrings");
    if g.wait_reason_strings.is_some() {
        if let Some((_, size)) = bin.symbol_with_size("runtime.waitReasonStrings") {
            g.wait_reason_count = Some(size / 16);
        }
    }
    if bin.arch() == Arch::Arm64 {
        locate_arm64(bin, tab, md, &mut g);
        return g;
    }
    if bin.arch() != Arch::Amd64 {
        return g;
    }
    let in_data = |a: u64| match md {
        Some(md) => md.is_global_data(a),
        None => bin.segment_of(a).map(|s| s.writable).unwrap_or(false),
    };
    let dis = |function: &str| LocateMethod::Disassembly {
        function: function.to_string(),
    };

    if g.allgs.is_none() {
        if let Some(d) = decode(bin, tab, "runtime.forEachG") {
            let c: Vec<u64> = slice_loads(&d)
                .into_iter()
                .filter(|&a| in_data(a))
                .collect();
            if c.len() == 1 {
                g.allgs = Some(Located {
                    addr: c[0],
                    how: dis("runtime.forEachG"),
                });
            }
        }
    }
    if g.allglen.is_none() {
        // allgadd stores allgptr then allglen atomically; allglen is the last.
        if let Some(d) = decode(bin, tab, "runtime.allgadd") {
            if let Some(&a) = d.atomic_stores.iter().rev().find(|&&a| in_data(a)) {
                g.allglen = Some(Located {
                    addr: a,
                    how: dis("runtime.allgadd"),
                });
            }
        }
    }
    if g.allm.is_none() {
        if let Some(d) = decode(bin, tab, "runtime.mcommoninit") {
            let c: Vec<u64> = d
                .atomic_stores
                .iter()
                .copied()
                .filter(|&a| in_data(a))
                .collect();
            if let Some(&a) = c.first() {
                g.allm = Some(Located {
                    addr: a,
                    how: dis("runtime.mcommoninit"),
                });
            }
        }
    }
    if g.allp.is_none() {
        for name in ["runtime.forEachPInternal", "runtime.forEachP"] {
            if let Some(d) = decode(bin, tab, name) {
                let c: Vec<u64> = slice_loads(&d)
                    .into_iter()
                    .filter(|&a| in_data(a))
                    .collect();
                if let Some(&a) = c.first() {
                    g.allp = Some(Located {
                        addr: a,
                        how: dis(name),
                    });
                    break;
                }
            }
        }
    }
    if g.sched.is_none() {
        if let Some(h) = sched {
            g.sched = locate_sched(bin, tab, md, h);
        }
    }
    if g.wait_reason_strings.is_none() {
        if let Some(d) = decode(bin, tab, "runtime.waitReason.String") {
            let arr = d
                .refs
                .iter()
                .filter(|r| r.mnemonic == Mnemonic::Lea && in_data(r.target))
                .map(|r| r.target)
                .next();
            if let (Some(a), Some(&n)) = (arr, d.cmp_imms.first()) {
                if n > 0 && n < 256 {
                    g.wait_reason_strings = Some(Located {
                        addr: a,
                        how: dis("runtime.waitReason.String"),
                    });
                    g.wait_reason_count = Some(n);
                }
            }
        }
    }
    g
}

/// `allgs` in a stripped arm64 binary: the slice `runtime.forEachG`
/// loads both words of (ADRP + LDR/LDP, see [`super::arm64`]).
fn locate_arm64(
    bin: &GoBinary,
    tab: &Pclntab<'_>,
    md: Option<&ModuleData>,
    g: &mut RuntimeGlobals,
) {
    if g.allgs.is_some() {
        return;
    }
    let in_data = |a: u64| match md {
        Some(md) => md.is_global_data(a),
        None => bin.segment_of(a).map(|s| s.writable).unwrap_or(false),
    };
    let Some(f) = tab.func_by_name("runtime.forEachG") else {
        return;
    };
    let Some(len) = f.end.checked_sub(f.entry).map(|l| l.min(MAX_DECODE)) else {
        return;
    };
    let Some(code) = bin.slice_at_vaddr(f.entry, len as usize) else {
        return;
    };
    let loads: Vec<u64> = super::arm64::static_accesses(code, f.entry)
        .into_iter()
        .filter(|a| !a.store && a.size == 8 && in_data(a.addr))
        .map(|a| a.addr)
        .collect();
    let mut c: Vec<u64> = loads
        .iter()
        .copied()
        .filter(|x| loads.contains(&(x + 8)))
        .collect();
    c.dedup();
    if c.len() == 1 {
        g.allgs = Some(Located {
            addr: c[0],
            how: LocateMethod::Disassembly {
                function: "runtime.forEachG".into(),
            },
        });
    }
}

/// `runtime.sched` in a stripped binary: the base address that explains
/// the `schedt.midle` and `schedt.nmidle` references in `runtime.mput`
/// (and `schedt.lock`, which it also touches when inlining is off).
pub(crate) fn locate_sched(
    bin: &GoBinary,
    tab: &Pclntab<'_>,
    md: Option<&ModuleData>,
    h: SchedHint,
) -> Option<Located> {
    if bin.arch() != Arch::Amd64 {
        return None;
    }
    let d = decode(bin, tab, "runtime.mput")?;
    let in_data = |a: u64| match md {
        Some(md) => md.is_global_data(a),
        None => bin.segment_of(a).map(|s| s.writable).unwrap_or(false),
    };
    let targets: Vec<u64> = d
        .refs
        .iter()
        .map(|r| r.target)
        .filter(|&a| in_data(a))
        .collect();
    let mut found: Option<(usize, u64)> = None;
    for &t in &targets {
        let Some(base) = t.checked_sub(h.midle) else {
            continue;
        };
        if !targets.contains(&(base + h.nmidle)) {
            continue;
        }
        let score = 2 + usize::from(targets.contains(&(base + h.lock)));
        if found.is_none_or(|(s, _)| score > s) {
            found = Some((score, base));
        }
    }
    found.map(|(_, addr)| Located {
        addr,
        how: LocateMethod::Disassembly {
            function: "runtime.mput".into(),
        },
    })
}

/// Reads a `[N]string` table (such as `waitReasonStrings`) from the
/// binary's initialized data. Bounded: at most 256 entries of 256 bytes.
pub(crate) fn read_string_table(bin: &GoBinary, addr: u64, count: u64) -> Option<Vec<String>> {
    if count > 256 {
        return None;
    }
    (0..count)
        .map(|i| bin.read_go_string(addr + 16 * i, 256).ok())
        .collect()
}
