//! Fuzzes the arm64 instruction decoder the locator runs over stripped
//! binaries (`binary::arm64::static_accesses`): arbitrary instruction
//! words at an arbitrary address (the first 8 bytes of the input) must
//! give a bounded list (at most two accesses per instruction word), never
//! a panic or an overflow. Each access must follow from an ADRP: with no
//! ADRP word in the input there is none.
//!
//! The same words go through `binary::arm64_text::format`, the arm64
//! half of `threads --disasm` (yaxpeax-arm's decoder and libopcodes'
//! text): one non-empty line per word, never a panic, and a PC-relative
//! target only from a word that has one (B, BL, B.cond, CBZ/CBNZ,
//! TBZ/TBNZ, ADR/ADRP, literal loads and prefetches).
#![no_main]

use gopeek::binary::arm64::static_accesses;
use gopeek::binary::arm64_text;
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
    for (i, w) in code.chunks_exact(4).enumerate() {
        let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let t = arm64_text::format(word, pc.wrapping_add(4 * i as u64));
        assert!(!t.text.is_empty());
        if t.target.is_some() {
            let pc_relative = word & 0x7c00_0000 == 0x1400_0000 // B, BL
                || word & 0xff00_0000 == 0x5400_0000 // B.cond
                || word & 0x7c00_0000 == 0x3400_0000 // CBZ/CBNZ, TBZ/TBNZ
                || word & 0x1f00_0000 == 0x1000_0000 // ADR, ADRP
                || word & 0xffc0_0000 == 0x5500_0000 // RETAASPPC, RETABSPPC
                || word & 0xffc0_0000 == 0xf380_0000 // AUTIASPPC, AUTIBSPPC
                || word & 0x3b00_0000 == 0x1800_0000; // LDR (literal), PRFM
            assert!(pc_relative, "{word:#010x}: {}", t.text);
        }
    }
});
