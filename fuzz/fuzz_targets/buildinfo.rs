//! Fuzzes the `.go.buildinfo` reader: the raw record parser, and the whole
//! path from an (arbitrary) ELF image through the section lookup or the
//! segment scan and, for the pre-1.18 form, pointer reads through the
//! binary's static image. Any panic, hang or huge allocation is a bug.
#![no_main]

use gopeek::binary::buildinfo::BuildInfo;
use gopeek::binary::elf::GoBinary;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bi) = BuildInfo::parse(data) {
        let _ = bi.version();
        let _ = bi.default_godebug();
    }
    if let Ok(bin) = GoBinary::from_vec("fuzz", data.to_vec()) {
        let _ = BuildInfo::from_binary(&bin);
    }
});
