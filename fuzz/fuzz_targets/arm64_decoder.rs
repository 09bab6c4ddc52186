//! Fuzzes the arm64 instruction decoder the locator runs over stripped
//! binaries (`binary::arm64::static_accesses`): arbitrary instruction
//! words at an arbitrary address (the first 8 bytes of the input) must
//! give a bounded list (at most two accesses per instruction word), never
//! a panic or an overflow. Each access must follow from an ADRP: with no
//! ADRP word in the input there is none.
#![no_main]

use gopeek::binary::arm64::static_accesses;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (pc, code) = match data.split_first_chunk::<8>() {
        Some((pc, code)) => (u64::from_le_bytes(*pc), code),
        None => (0, data),
    };
    let out = static_accesses(code, pc);
    assert!(out.len() <= 2 * (code.len() / 4));
    let has_adrp = code
        .chunks_exact(4)
        .any(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) & 0x9F00_0000 == 0x9000_0000);
    assert!(has_adrp || out.is_empty());
});
