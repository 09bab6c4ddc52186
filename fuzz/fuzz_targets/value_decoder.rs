//! Fuzzes the value decoder over hostile memory with real types: a Go
//! binary's DWARF (GOPEEK_FUZZ_BINARY, default the go1.27 default
//! `printvals` fixture; its maps are Swiss tables, a go1.23 one exercises
//! buckets) supplies the types, and the input supplies the memory: the
//! first two bytes pick a global, the rest is placed at its address and
//! again at a "heap" address that small pointers in the input can reach.
//! Garbage headers, lengths, map directories and interface words must end
//! in an error for that node, never a panic or a read over the budget.
#![no_main]

use gopeek::binary::elf::GoBinary;
use gopeek::layout::Sections;
use gopeek::memory::RegionMemory;
use gopeek::value::{Decoder, DwarfInfo, Limits};
use libfuzzer_sys::fuzz_target;

#[path = "../common/mod.rs"]
mod common;
use std::sync::OnceLock;

struct Target {
    dwarf: DwarfInfo<'static>,
    globals: Vec<(u64, gopeek::value::TypeId)>,
    /// Kept so that the leak checker sees the leaked binary as reachable
    /// (`Sections` holds only slices of its mapping).
    _bin: &'static GoBinary,
}

// DwarfInfo borrows the leaked binary and sections and keeps a RefCell
// cache; libFuzzer runs the target on one thread.
unsafe impl Sync for Target {}
unsafe impl Send for Target {}

fn target() -> &'static Target {
    static T: OnceLock<Target> = OnceLock::new();
    T.get_or_init(|| {
        let bin: &'static GoBinary = common::fuzz_binary("printvals");
        let sections: &'static Sections<'static> =
            Box::leak(Box::new(Sections::load(bin).expect("DWARF")));
        let dwarf = DwarfInfo::new(sections);
        let globals = dwarf
            .globals()
            .into_iter()
            .filter(|(n, _)| n.starts_with("main."))
            .map(|(_, g)| (g.addr, g.ty))
            .collect();
        Target {
            dwarf,
            globals,
            _bin: bin,
        }
    })
}

const HEAP: u64 = 0xc000_0000;

fuzz_target!(|data: &[u8]| {
    let t = target();
    if data.len() < 2 || t.globals.is_empty() {
        return;
    }
    let (addr, ty) = t.globals[u16::from_le_bytes([data[0], data[1]]) as usize % t.globals.len()];
    let body = data[2..].to_vec();
    let mut mem = RegionMemory::new();
    mem.insert(addr, body.clone());
    mem.insert(HEAP, body);
    let limits = Limits {
        max_depth: 12,
        max_len: 64,
        max_bytes: 1 << 20,
    };
    let names = |_: u64| None;
    let d = Decoder::new(&t.dwarf, &mem, limits, Some(HEAP), &names);
    let v = d.load(ty, addr, 0);
    let _ = gopeek::value::gofmt::go_syntax(&v);
    let _ = gopeek::value::gojson::encode(&v, 27);
    let _ = v.tree();
    assert!(d.bytes_used() <= limits.max_bytes);
});
