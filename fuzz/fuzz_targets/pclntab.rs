//! Fuzzes the pclntab reader: header, function table, `_func` records,
//! pc-value tables (pcsp/pcfile/pcln/pcdata), inline trees, and the
//! argument funcdata (argument info, spill-slot liveness). The input is
//! split at a point chosen by its first two bytes into the table and the
//! `go:func.*` area that funcdata (inline trees) point into. Any panic,
//! hang or huge allocation is a bug.
#![no_main]

use gopeek::binary::pclntab::Pclntab;
use libfuzzer_sys::fuzz_target;

const TEXT: u64 = 0x401000;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (tab, gofunc) = data[2..].split_at(split.max(0).min(data.len() - 2));
    let (tab, gofunc) = if tab.len() >= 0x48 {
        (tab, gofunc)
    } else {
        (&data[2..], &[][..])
    };
    for text in [None, Some(TEXT)] {
        let Ok(p) = Pclntab::parse(tab, 0x500000, text) else {
            continue;
        };
        let p = p.with_gofunc(0x600000, gofunc);
        for f in p.funcs().take(64).flatten() {
            let _ = f.name();
            for pc in [
                f.entry,
                f.entry.wrapping_add(1),
                f.entry.wrapping_add(7),
                f.end.wrapping_sub(1),
            ] {
                let _ = f.sp_delta(pc);
                let _ = f.file_line(pc);
                let _ = f.frames_at(pc);
                let _ = f.pcdata(2, pc);
                let _ = f.outermost_pc(pc);
                if let Ok(l) = f.arg_liveness(pc) {
                    for (off, slot) in [(0u8, 0u8), (0x10, 1), (0xfa, 0xff)] {
                        let _ = l.is_live(off, slot);
                    }
                }
            }
            let _ = f.arg_info();
        }
        for i in 0..64u64 {
            let pc = p.text_start().wrapping_add(i * 13);
            if let Ok(f) = p.find_func(pc) {
                let _ = f.frames_at(pc);
            }
        }
    }
});
