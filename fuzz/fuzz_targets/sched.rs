//! Fuzzes `gopeek sched`'s reader (`walk::sched::read_sched`) and its
//! text rules over hostile memory: a real Go binary supplies the globals'
//! addresses and the layouts (GOPEEK_FUZZ_BINARY, default the go1.27
//! default `parked` fixture); the input supplies `runtime.sched`, one P,
//! one M and one g, and a "heap" the pointers in them may land in.
//! Self-referencing `alllink`, huge counts, garbage strings must end in an
//! error or a text, never a panic, a hang or a huge allocation.
#![no_main]

use gopeek::binary::elf::GoBinary;
use gopeek::binary::program::GoProgram;
use gopeek::gotrace::sched::schedtrace_text;
use gopeek::layout::offsets::{RuntimeOffsets, SchedDetailOffsets};
use gopeek::memory::RegionMemory;
use gopeek::walk::sched::{read_sched, SchedConfig};
use libfuzzer_sys::fuzz_target;

#[path = "../common/mod.rs"]
mod common;
use std::sync::OnceLock;

struct Target {
    prog: GoProgram<'static>,
    off: RuntimeOffsets,
    det: SchedDetailOffsets,
}

// GoProgram borrows tables from the mapped binary; the fuzzer process keeps
// both for its whole life.
unsafe impl Sync for Target {}
unsafe impl Send for Target {}

fn target() -> &'static Target {
    static T: OnceLock<Target> = OnceLock::new();
    T.get_or_init(|| {
        let bin: &'static GoBinary = common::fuzz_binary("parked");
        let (prog, layout) = gopeek::layout::load_program(bin).expect("a Go binary");
        let layout = layout.expect("layout");
        let off = layout.offsets().expect("offsets");
        let det = SchedDetailOffsets::from_layout(&layout).expect("sched offsets");
        Target { prog, off, det }
    })
}

const P_ADDR: u64 = 0x1000_0000;
const M_ADDR: u64 = 0x2000_0000;
const G_ADDR: u64 = 0x3000_0000;
const ARRAYS: u64 = 0x4000_0000;
const HEAP: u64 = 0x5000_0000;

/// The next `n` bytes of the input (zero-padded).
fn take(data: &mut &[u8], n: usize) -> Vec<u8> {
    let k = data.len().min(n);
    let mut v = data[..k].to_vec();
    *data = &data[k..];
    v.resize(n, 0);
    v
}

fuzz_target!(|input: &[u8]| {
    let t = target();
    let g = &t.prog.globals;
    let (Some(sched), Some(allm), Some(allp), Some(allgs)) = (&g.sched, &g.allm, &g.allp, &g.allgs)
    else {
        return;
    };
    let mut data = input;
    // The first byte picks the slice lengths (0..=3 each): duplicates and
    // missing entries are exercised too.
    let sel = data.first().copied().unwrap_or(0x15);
    let (np, ng) = (u64::from(sel & 3), u64::from((sel >> 2) & 3));
    let mut mem = RegionMemory::new();
    mem.insert(sched.addr, take(&mut data, t.off.sched.size as usize));
    mem.insert(P_ADDR, take(&mut data, t.off.p.size as usize));
    mem.insert(M_ADDR, take(&mut data, t.off.m.size as usize));
    mem.insert(G_ADDR, take(&mut data, t.off.g.size as usize));
    mem.insert(HEAP, data.to_vec());
    mem.insert(allm.addr, M_ADDR.to_le_bytes().to_vec());
    let slice = |ptr: u64, n: u64| [ptr.to_le_bytes(), n.to_le_bytes(), n.to_le_bytes()].concat();
    mem.insert(allp.addr, slice(ARRAYS, np));
    mem.insert(allgs.addr, slice(ARRAYS + 0x100, ng));
    let arr = |a: u64, n: u64| (0..n).flat_map(|_| a.to_le_bytes()).collect::<Vec<u8>>();
    mem.insert(ARRAYS, arr(P_ADDR, np));
    mem.insert(ARRAYS + 0x100, arr(G_ADDR, ng));
    let reasons = vec![String::new(), "chan receive".to_string()];
    let cfg = SchedConfig {
        globals: g,
        off: &t.off,
        det: &t.det,
        wait_reasons: &reasons,
        go_minor: t.prog.version.minor,
        bias: 0,
        now_ns: 1 << 40,
    };
    if let Ok(s) = read_sched(&mem, &cfg) {
        let _ = schedtrace_text(&s, true);
        let _ = schedtrace_text(&s, false);
    }
});
