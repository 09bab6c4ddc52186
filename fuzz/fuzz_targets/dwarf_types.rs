//! Fuzzes `gopeek print`'s DWARF reader: the input is split into
//! `.debug_info`, `.debug_abbrev` and `.debug_str` (two length bytes
//! each), indexed, and every global found and every entry offset the
//! input names is decoded as a type, then every global is decoded as a
//! value over memory made of the input. Malformed units, cyclic typedefs,
//! references out of range and impossible sizes must end in an error for
//! that type or value, never a panic, a hang or a huge allocation.
#![no_main]

use gopeek::layout::Sections;
use gopeek::memory::RegionMemory;
use gopeek::value::{Decoder, DwarfInfo, Limits, TypeId};
use libfuzzer_sys::fuzz_target;

#[path = "../common/mod.rs"]
mod common;
use common::take_section as take;

fuzz_target!(|input: &[u8]| {
    let mut data = input;
    let info = take(&mut data);
    let abbrev = take(&mut data);
    let strs = take(&mut data);
    let sections = Sections::from_bytes(info, abbrev, strs);
    let dwarf = DwarfInfo::new(&sections);
    for chunk in data.chunks(4).take(64) {
        let mut b = [0u8; 4];
        b[..chunk.len()].copy_from_slice(chunk);
        let _ = dwarf.get(TypeId(
            u32::from_le_bytes(b) as u64 % (info.len() as u64 + 1),
        ));
    }
    let mut mem = RegionMemory::new();
    let limits = Limits {
        max_depth: 8,
        max_len: 16,
        max_bytes: 1 << 16,
    };
    let names = |_: u64| None;
    for (_, g) in dwarf.globals().into_iter().take(32) {
        mem.insert(g.addr, data.to_vec());
        let d = Decoder::new(&dwarf, &mem, limits, Some(0), &names);
        let v = d.load(g.ty, g.addr, 0);
        let _ = gopeek::value::gofmt::go_syntax(&v);
        let _ = gopeek::value::gojson::encode(&v, 27);
        let _ = v.tree();
        assert!(d.bytes_used() <= limits.max_bytes);
    }
});
