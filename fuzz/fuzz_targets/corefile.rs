//! Fuzzes the core-file reader: ELF header, program headers, every note
//! gopeek decodes (NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE), memory
//! reads across segments (present, left out, truncated), and the check of
//! an executable against the core (the same bytes serve as both). Any
//! panic, hang or huge allocation is a bug.
#![no_main]

use gopeek::corefile::{exe, CoreFile, CoreMemory};
use gopeek::memory::Memory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(core) = CoreFile::from_vec("fuzz", data.to_vec()) else {
        return;
    };
    for t in core.threads() {
        let _ = (t.pc(), t.sp(), t.lr(), t.g_register());
    }
    let _ = core.exe_path_from_notes();
    let _ = exe::exe_path(&core);
    let matched = exe::check(&core, std::path::Path::new("fuzz"), data);
    let addrs: Vec<u64> = core
        .segments()
        .iter()
        .flat_map(|s| [s.vaddr, s.vaddr.wrapping_add(s.memsz).wrapping_sub(4)])
        .chain(core.threads().iter().map(|t| t.sp()))
        .collect();
    let mut mem = CoreMemory::new(core);
    if let Ok(m) = matched {
        mem = mem.with_executable(Box::new(data.to_vec()), m.ranges);
    }
    let mut buf = [0u8; 64];
    for a in addrs {
        let _ = mem.read_at(a, &mut buf);
        let _ = mem.read_at(a, &mut buf[..1]);
    }
});
