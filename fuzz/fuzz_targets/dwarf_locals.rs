//! Fuzzes the frame-variable reader of `gopeek print --goroutine`: the
//! input is split into `.debug_info`, `.debug_abbrev`, `.debug_str`,
//! `.debug_loc`, `.debug_loclists`, `.debug_ranges` and `.debug_rnglists`
//! (two length bytes each); the rest gives PCs, CFAs and inline levels.
//! Each frame's variables are listed (subprogram by PC, lexical blocks and
//! inlined calls by their ranges, location expressions and lists
//! evaluated) and placed over memory made of the input. Hostile bytes must
//! end in an error for that frame or variable, never a panic, a hang or a
//! huge allocation.
#![no_main]

use gopeek::layout::Sections;
use gopeek::memory::RegionMemory;
use gopeek::value::locals::{slot, FrameAt};
use gopeek::value::regs::{FrameRegs, Regs};
use gopeek::value::DwarfInfo;
use libfuzzer_sys::fuzz_target;

#[path = "../common/mod.rs"]
mod common;
use common::take_section as take;

fuzz_target!(|input: &[u8]| {
    let mut data = input;
    let info = take(&mut data);
    let abbrev = take(&mut data);
    let strs = take(&mut data);
    let (loc, loclists, ranges, rnglists) = (
        take(&mut data),
        take(&mut data),
        take(&mut data),
        take(&mut data),
    );
    let sections =
        Sections::from_bytes(info, abbrev, strs).with_lists(loc, loclists, ranges, rnglists);
    let dwarf = DwarfInfo::new(&sections);
    let mut mem = RegionMemory::new();
    mem.insert(0x1000, data.to_vec());
    for chunk in data.chunks(17).take(16) {
        let mut b = [0u8; 17];
        b[..chunk.len()].copy_from_slice(chunk);
        let at = FrameAt {
            pc: u64::from_le_bytes(b[0..8].try_into().unwrap()),
            cfa: 0x1000 + u64::from(u16::from_le_bytes([b[8], b[9]])),
            bias: u64::from(b[10]),
            inline_level: usize::from(b[16] % 4),
            regs: if b[16] & 4 != 0 {
                FrameRegs::Held(
                    Regs::from_named(&[("rax", u64::from(b[11])), ("rbx", 0x1000)]).unwrap(),
                )
            } else {
                FrameRegs::NotOwn
            },
            arm64: b[16] & 8 != 0,
        };
        if let Ok(vars) = dwarf.frame_vars(&at) {
            for v in vars.vars.iter().take(64) {
                let _ = slot(v, 64, &mem);
            }
        }
    }
});
