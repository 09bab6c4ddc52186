//! Unit tests of the capture strategies on fake memory, with no fixture
//! binary: a synthetic Go program (three functions in a hand-built
//! pclntab, the Go 1.27 layout table) and synthetic g structs, M's and
//! stacks in a [`RegionMemory`]. Tests change that memory between the
//! phases of a strategy (or, through [`Live`], in the middle of a read) and
//! check which copy of each goroutine ends up in the capture.
//!
//! Every function has a zero-size frame, so a stack is just its return
//! PCs: a goroutine parked at `A` with `[B, C]` on its stack unwinds to
//! the frames `A, B, C` (the walk stops at the 0 word above them).

mod consistent;
mod held;
mod nonblocking;

use super::{Capture, GoroutineCopy};
use crate::binary::buildinfo::BuildInfo;
use crate::binary::elf::GoBinary;
use crate::binary::locate::{LocateMethod, Located, RuntimeGlobals};
use crate::binary::pclntab::Pclntab;
use crate::binary::program::GoProgram;
use crate::binary::version::GoVersion;
use crate::layout::offsets::RuntimeOffsets;
use crate::layout::RuntimeLayout;
use crate::memory::{BatchRead, Memory, MemoryError, RegionMemory};
use crate::walk::gstruct::{G_DEAD, G_RUNNING, G_WAITING};
use crate::walk::{ThreadRegs, WalkConfig};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Start of the fake text: `main.a`, `main.b`, `main.c`, 0x100 bytes each.
const TEXT: u64 = 0x40_1000;
const FUNC_SIZE: u64 = 0x100;
/// A PC in each function.
pub(super) const A: u64 = TEXT + 0x10;
pub(super) const B: u64 = TEXT + FUNC_SIZE + 0x10;
pub(super) const C: u64 = TEXT + 2 * FUNC_SIZE + 0x10;

/// `runtime.allgs` (a slice header), and the array it points at.
const ALLGS: u64 = 0x50_0000;
const ARRAY: u64 = 0x60_0000;
/// g `slot` sits at `G_BASE + slot * G_STRIDE`, its stack at
/// `STACK_BASE + slot * STACK_STRIDE`, its M (if running) at
/// `M_BASE + slot * M_STRIDE`, and its thread's TID is `TID_BASE + slot`.
const G_BASE: u64 = 0xc000_0000;
const G_STRIDE: u64 = 0x200;
const STACK_BASE: u64 = 0xc800_0000;
const STACK_STRIDE: u64 = 0x1000;
const STACK_SIZE: u64 = 0x800;
/// Where the saved SP sits below the top of the stack.
const SP_BELOW_TOP: u64 = 0x100;
const M_BASE: u64 = 0xd000_0000;
const M_STRIDE: u64 = 0x1000;
const TID_BASE: i32 = 1000;

/// The Go 1.27 offsets of the built-in layout table.
fn offsets() -> RuntimeOffsets {
    RuntimeLayout::from_table(27)
        .and_then(|l| l.offsets().ok())
        .expect("built-in layout table for Go 1.27")
}

/// The smallest x86-64 ELF executable header the object crate accepts:
/// the walker needs a `GoBinary` to borrow, not its contents.
fn elf_header() -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    h[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    h[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    h
}

/// A Go 1.20+ pclntab with three functions whose frames are all 0 bytes
/// (`pcsp` is 0 everywhere): each frame's return address is the word at
/// its SP.
fn pclntab() -> Vec<u8> {
    let names = ["main.a", "main.b", "main.c"];
    let mut funcname = Vec::new();
    let mut name_off = Vec::new();
    for n in names {
        name_off.push(funcname.len() as u32);
        funcname.extend_from_slice(n.as_bytes());
        funcname.push(0);
    }
    // Offset 0 means "no table"; the pcsp table (value 0 over 0x100 bytes)
    // is at offset 1.
    let pctab = [0u8, 2, 0x80, 0x02, 0];
    const RECORD: usize = 0x2c;
    let n = names.len();
    let mut functab = Vec::new();
    for i in 0..=n {
        let funcoff = if i < n { (n + 1) * 8 + i * RECORD } else { 0 };
        functab.extend_from_slice(&(i as u32 * FUNC_SIZE as u32).to_le_bytes());
        functab.extend_from_slice(&(funcoff as u32).to_le_bytes());
    }
    for (i, off) in name_off.iter().enumerate() {
        let mut r = vec![0u8; RECORD];
        r[0..4].copy_from_slice(&(i as u32 * FUNC_SIZE as u32).to_le_bytes());
        r[4..8].copy_from_slice(&off.to_le_bytes());
        r[0x10..0x14].copy_from_slice(&1u32.to_le_bytes()); // pcsp
        functab.extend(r);
    }
    let mut out = vec![0u8; 0x48];
    let funcname_off = out.len();
    out.extend(&funcname);
    let pctab_off = out.len();
    out.extend(pctab);
    while out.len() % 8 != 0 {
        out.push(0);
    }
    let functab_off = out.len();
    out.extend(functab);
    out[0..4].copy_from_slice(&0xffff_fff1u32.to_le_bytes());
    out[6] = 1; // instruction size quantum
    out[7] = 8; // pointer size
    let words = [
        n as u64,
        0,
        TEXT,
        funcname_off as u64,
        pctab_off as u64, // cu table: none
        pctab_off as u64, // file table: none
        pctab_off as u64,
        functab_off as u64,
    ];
    for (i, w) in words.iter().enumerate() {
        out[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// Runs `f` with a [`WalkConfig`] for the synthetic program.
pub(super) fn with_cfg<T>(f: impl FnOnce(&WalkConfig<'_, '_>) -> T) -> T {
    let bin = GoBinary::from_vec("fake", elf_header()).expect("minimal ELF header");
    let tab = pclntab();
    let prog = GoProgram {
        bin: &bin,
        build_info: BuildInfo::default(),
        version: GoVersion::parse("go1.27").expect("version"),
        pclntab: Pclntab::parse(&tab, 0x70_0000, None).expect("synthetic pclntab"),
        pclntab_how: "built by the test".into(),
        moduledata: None,
        moduledata_error: None,
        globals: RuntimeGlobals {
            allgs: Some(Located {
                addr: ALLGS,
                how: LocateMethod::Symtab,
            }),
            ..RuntimeGlobals::default()
        },
        wait_reasons_from_binary: None,
    };
    let off = offsets();
    let cfg = WalkConfig {
        prog: &prog,
        off: &off,
        bias: 0,
        wait_reasons: Vec::new(),
        gstatus: Vec::new(),
        frame_registers: false,
    };
    f(&cfg)
}

/// One goroutine as the fake runtime holds it.
#[derive(Debug, Clone)]
pub(super) struct FakeG {
    pub(super) goid: u64,
    pub(super) status: u32,
    /// Where it stopped (`g.sched.pc`, or its thread's PC when running),
    /// then the return PCs on its stack.
    pub(super) pcs: Vec<u64>,
    /// `g.trackingSeq`: bumped by the runtime whenever it stops running.
    pub(super) seq: u8,
}

impl FakeG {
    /// A goroutine parked in `pcs[0]` (a channel receive, say).
    pub(super) fn parked(goid: u64, pcs: &[u64]) -> FakeG {
        FakeG {
            goid,
            status: G_WAITING,
            pcs: pcs.to_vec(),
            seq: 0,
        }
    }

    /// A goroutine running on its own thread, at `pcs[0]`.
    pub(super) fn running(goid: u64, pcs: &[u64]) -> FakeG {
        FakeG {
            status: G_RUNNING,
            ..FakeG::parked(goid, pcs)
        }
    }

    /// The same goroutine after it ran and parked again elsewhere.
    pub(super) fn ran_to(&self, pcs: &[u64]) -> FakeG {
        FakeG {
            pcs: pcs.to_vec(),
            seq: self.seq.wrapping_add(1),
            status: G_WAITING,
            ..self.clone()
        }
    }
}

/// The fake target: its memory and the goroutines written into it.
pub(super) struct World {
    pub(super) mem: RegionMemory,
    off: RuntimeOffsets,
    /// The goroutine in each slot (`None`: never written, so unmapped).
    slots: Vec<Option<FakeG>>,
}

impl World {
    /// One slot per goroutine, all listed in `allgs` in order.
    pub(super) fn new(gs: &[FakeG]) -> World {
        let off = offsets();
        assert!(off.g.size <= G_STRIDE, "a g must fit its slot");
        let mut w = World {
            mem: RegionMemory::new(),
            off,
            slots: Vec::new(),
        };
        for (slot, g) in gs.iter().enumerate() {
            w.set(slot, g.clone());
        }
        w.write_allgs();
        w
    }

    fn g_addr(slot: usize) -> u64 {
        G_BASE + slot as u64 * G_STRIDE
    }

    fn stack_lo(slot: usize) -> u64 {
        STACK_BASE + slot as u64 * STACK_STRIDE
    }

    fn sp(slot: usize) -> u64 {
        Self::stack_lo(slot) + STACK_SIZE - SP_BELOW_TOP
    }

    fn m_addr(slot: usize) -> u64 {
        M_BASE + slot as u64 * M_STRIDE
    }

    /// Writes goroutine `g` into `slot` (its g, stack and, when running,
    /// its M), replacing what was there. `allgs` is not changed.
    pub(super) fn set(&mut self, slot: usize, g: FakeG) {
        let o = &self.off.g;
        let addr = Self::g_addr(slot);
        let running = g.status == G_RUNNING;
        let mut b = vec![0u8; G_STRIDE as usize];
        let mut put =
            |at: u64, v: u64| b[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
        put(o.goid, g.goid);
        put(o.stack_lo, Self::stack_lo(slot));
        put(o.stack_hi, Self::stack_lo(slot) + STACK_SIZE);
        put(o.sched_g, addr);
        if running {
            put(o.m, Self::m_addr(slot));
        } else {
            put(o.sched_sp, Self::sp(slot));
            put(o.sched_pc, g.pcs[0]);
        }
        let status = o.atomicstatus as usize;
        b[status..status + 4].copy_from_slice(&g.status.to_le_bytes());
        b[o.tracking_seq.expect("trackingSeq in 1.27") as usize] = g.seq;
        self.mem.insert(addr, b);
        let mut stack = vec![0u8; STACK_SIZE as usize];
        let base = (STACK_SIZE - SP_BELOW_TOP) as usize;
        for (k, pc) in g.pcs[1..].iter().enumerate() {
            stack[base + 8 * k..base + 8 * k + 8].copy_from_slice(&pc.to_le_bytes());
        }
        self.mem.insert(Self::stack_lo(slot), stack);
        if running {
            let mo = &self.off.m;
            let mut m = vec![0u8; M_STRIDE as usize];
            let tid = (TID_BASE + slot as i32) as u64;
            m[mo.procid as usize..mo.procid as usize + 8].copy_from_slice(&tid.to_le_bytes());
            m[mo.id as usize..mo.id as usize + 8].copy_from_slice(&(slot as u64).to_le_bytes());
            self.mem.insert(Self::m_addr(slot), m);
        }
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, None);
        }
        self.slots[slot] = Some(g);
    }

    /// Marks the goroutine in `slot` as exited (its g stays in `allgs`, as
    /// Go keeps dead g's for reuse).
    pub(super) fn exit(&mut self, slot: usize) {
        let mut g = self.slots[slot].clone().expect("a goroutine in that slot");
        g.status = G_DEAD;
        self.set(slot, g);
    }

    /// Appends a new goroutine to `allgs`; its slot.
    pub(super) fn spawn(&mut self, g: FakeG) -> usize {
        let slot = self.slots.len();
        self.set(slot, g);
        self.write_allgs();
        slot
    }

    /// Lists one more g in `allgs` whose slot was never mapped.
    pub(super) fn list_unmapped(&mut self) -> usize {
        let slot = self.slots.len();
        self.slots.push(None);
        self.write_allgs();
        slot
    }

    fn write_allgs(&mut self) {
        let n = self.slots.len() as u64;
        let mut hdr = ARRAY.to_le_bytes().to_vec();
        hdr.extend(n.to_le_bytes());
        hdr.extend(n.to_le_bytes());
        self.mem.insert(ALLGS, hdr);
        let array = (0..self.slots.len())
            .flat_map(|s| Self::g_addr(s).to_le_bytes())
            .collect();
        self.mem.insert(ARRAY, array);
    }

    /// The registers of the threads of the running goroutines, as a seize
    /// would report them.
    pub(super) fn threads(&self) -> Vec<ThreadRegs> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, g)| {
                let g = g.as_ref().filter(|g| g.status == G_RUNNING)?;
                Some(ThreadRegs {
                    tid: TID_BASE + slot as i32,
                    pc: g.pcs[0],
                    sp: Self::sp(slot),
                    lr: 0,
                    fp: 0,
                })
            })
            .collect()
    }

    /// The TID the goroutine in `slot` runs on, when running.
    pub(super) fn tid(slot: usize) -> i32 {
        TID_BASE + slot as i32
    }
}

/// Fake memory that changes while it is read: `on_read` runs after every
/// read with its address, and may rewrite the world (a goroutine that
/// wakes up between two reads).
pub(super) struct Live {
    pub(super) world: Mutex<World>,
    #[allow(clippy::type_complexity)]
    on_read: Mutex<Box<dyn FnMut(u64, &mut World) + Send>>,
}

impl Live {
    pub(super) fn new(world: World, on_read: impl FnMut(u64, &mut World) + Send + 'static) -> Live {
        Live {
            world: Mutex::new(world),
            on_read: Mutex::new(Box::new(on_read)),
        }
    }

    /// The address the stack of `slot` is read from (its saved SP).
    pub(super) fn stack_read_at(slot: usize) -> u64 {
        World::sp(slot)
    }
}

impl Memory for Live {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let mut world = self.world.lock().expect("world lock");
        let r = world.mem.read_at(addr, buf);
        (self.on_read.lock().expect("hook lock"))(addr, &mut world);
        r
    }
}

impl BatchRead for Live {}

/// What the capture shows of a goroutine's stack: its PCs, or the error.
pub(super) fn stack_of(g: &GoroutineCopy) -> Result<Vec<u64>, String> {
    let st = g.stack.as_ref().map_err(Clone::clone)?;
    match &st.shape.error {
        Some(e) => Err(e.clone()),
        None => Ok(st.frames().map(|f| f.pc).collect()),
    }
}

/// Every goroutine of a capture by goid, with what [`stack_of`] shows.
pub(super) fn stacks(cap: &Capture) -> BTreeMap<u64, Result<Vec<u64>, String>> {
    cap.goroutines
        .iter()
        .map(|g| (g.rec.goid, stack_of(g)))
        .collect()
}

/// `keep_going` for a hold whose budget never runs out.
pub(super) fn forever() -> bool {
    true
}

#[test]
fn the_fake_program_unwinds_a_parked_goroutine() {
    // The harness itself: a parked goroutine's frames are its PCs.
    let w = World::new(&[FakeG::parked(1, &[A, B, C])]);
    with_cfg(|cfg| {
        let mut s = super::strategy::<RegionMemory>(super::Mode::Held);
        s.while_held(cfg, &w.mem, Vec::new(), &forever).unwrap();
        let cap = s.after_release(cfg, &w.mem).unwrap();
        assert_eq!(stacks(&cap), BTreeMap::from([(1, Ok(vec![A, B, C]))]));
    });
}
