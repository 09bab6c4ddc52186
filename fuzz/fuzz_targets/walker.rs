//! Fuzzes the goroutine walker and the unwinder over hostile memory: a real
//! Go binary supplies the pclntab and layouts (GOPEEK_FUZZ_BINARY, default
//! the go1.27 default `parked` fixture), and the input supplies the
//! target's memory: the `allgs` slice header, one g struct, and a "stack"
//! region the g may point into. Pointers into nowhere, cycles, huge
//! lengths and reversed stack bounds must end in a per-goroutine error,
//! never a panic, a hang or a huge allocation.
#![no_main]

use gopeek::binary::elf::GoBinary;
use gopeek::binary::program::GoProgram;
use gopeek::layout::offsets::RuntimeOffsets;
use gopeek::memory::RegionMemory;
use gopeek::walk::capture::{strategy, Mode};
use gopeek::walk::{build_goroutines, WalkConfig};
use libfuzzer_sys::fuzz_target;

#[path = "../common/mod.rs"]
mod common;
use std::sync::OnceLock;

struct Target {
    prog: GoProgram<'static>,
    off: RuntimeOffsets,
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
        let off = layout.expect("layout").offsets().expect("offsets");
        Target { prog, off }
    })
}

const G_ADDR: u64 = 0x1000_0000;
const STACK_ADDR: u64 = 0x2000_0000;
const ARRAY_ADDR: u64 = 0x3000_0000;

fuzz_target!(|data: &[u8]| {
    let t = target();
    let gsize = t.off.g.size as usize;
    let (gbytes, stack) = data.split_at(data.len().min(gsize));
    let mut mem = RegionMemory::new();
    let allgs = t.prog.globals.allgs.as_ref().unwrap().addr;
    // allgs = {ARRAY_ADDR, n, n}: the last input byte picks n (0..=3), so
    // duplicated and missing g pointers are exercised too.
    let n = u64::from(data.last().copied().unwrap_or(1) % 4);
    let mut hdr = ARRAY_ADDR.to_le_bytes().to_vec();
    hdr.extend(n.to_le_bytes());
    hdr.extend(n.to_le_bytes());
    mem.insert(allgs, hdr);
    let mut arr = Vec::new();
    for _ in 0..n {
        arr.extend(G_ADDR.to_le_bytes());
    }
    mem.insert(ARRAY_ADDR, arr);
    let mut g = gbytes.to_vec();
    g.resize(gsize, 0);
    mem.insert(G_ADDR, g);
    mem.insert(STACK_ADDR, stack.to_vec());
    let cfg = WalkConfig {
        prog: &t.prog,
        off: &t.off,
        bias: 0,
        wait_reasons: vec!["".into(), "chan receive".into()],
        gstatus: vec![
            "idle".into(),
            "runnable".into(),
            "running".into(),
            "syscall".into(),
            "waiting".into(),
        ],
        frame_registers: false,
    };
    // The fake memory is consistent already: the sudo path's single pass.
    let mut capture = strategy(Mode::Held);
    let captured = capture
        .while_held(&cfg, &mem, Vec::new(), &|| true)
        .and_then(|()| capture.after_release(&cfg, &mem));
    if let Ok(mut cap) = captured {
        let _ = build_goroutines(&cfg, &mut cap);
    }
});
