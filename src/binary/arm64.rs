//! A decoder for the few arm64 instructions Go uses to reach a global:
//! `ADRP Xd, page` followed by `ADD Xd, Xn, #lo12` (an address) or
//! `LDR/STR Xt, [Xn, #imm]` and `LDP` (a load or store). A linear pass
//! tracks which registers hold a known page or address and reports every
//! memory access through them; any other instruction forgets the register
//! it writes. Used by the locator for stripped arm64 binaries, where
//! iced-x86 has nothing to decode. Pure and bounded: fuzzed.

/// One access to a statically known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticAccess {
    /// The address accessed.
    pub addr: u64,
    /// Bytes loaded or stored (4 or 8).
    pub size: u8,
    /// A store rather than a load.
    pub store: bool,
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Every static access in `code`, which starts at address `pc`.
pub fn static_accesses(code: &[u8], pc: u64) -> Vec<StaticAccess> {
    let mut regs: [Option<u64>; 32] = [None; 32];
    let mut out = Vec::new();
    for (i, w) in code.chunks_exact(4).enumerate() {
        let insn = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let at = pc.wrapping_add(4 * i as u64);
        let rd = (insn & 31) as usize;
        let rn = ((insn >> 5) & 31) as usize;
        let base = regs[rn];
        if insn & 0x9F00_0000 == 0x9000_0000 {
            // ADRP
            let immlo = u64::from((insn >> 29) & 3);
            let immhi = u64::from((insn >> 5) & 0x7_FFFF);
            let imm = sign_extend((immhi << 2) | immlo, 21) << 12;
            regs[rd] = Some((at & !0xFFF).wrapping_add(imm as u64));
            continue;
        }
        if insn & 0xFF80_0000 == 0x9100_0000 {
            // ADD Xd, Xn, #imm{, LSL #12}
            let mut imm = u64::from((insn >> 10) & 0xFFF);
            if insn & (1 << 22) != 0 {
                imm <<= 12;
            }
            regs[rd] = base.map(|b| b.wrapping_add(imm));
            continue;
        }
        let unsigned =
            |scale: u64| base.map(|b| b.wrapping_add(u64::from((insn >> 10) & 0xFFF) * scale));
        let access = match insn & 0xFFC0_0000 {
            0xF940_0000 => unsigned(8).map(|a| (a, 8, false, false)),
            0xF900_0000 => unsigned(8).map(|a| (a, 8, true, false)),
            0xB940_0000 => unsigned(4).map(|a| (a, 4, false, false)),
            0xB900_0000 => unsigned(4).map(|a| (a, 4, true, false)),
            // LDP/STP Xt1, Xt2, [Xn, #imm7*8]
            0xA940_0000 | 0xA900_0000 => base.map(|b| {
                let imm = sign_extend(u64::from((insn >> 15) & 0x7F), 7) * 8;
                (
                    b.wrapping_add(imm as u64),
                    8,
                    insn & 0xFFC0_0000 == 0xA900_0000,
                    true,
                )
            }),
            _ => None,
        };
        let is_mem = matches!(
            insn & 0xFFC0_0000,
            0xF940_0000 | 0xF900_0000 | 0xB940_0000 | 0xB900_0000 | 0xA940_0000 | 0xA900_0000
        );
        if let Some((addr, size, store, pair)) = access {
            out.push(StaticAccess { addr, size, store });
            if pair {
                out.push(StaticAccess {
                    addr: addr.wrapping_add(8),
                    size,
                    store,
                });
            }
        }
        if is_mem {
            let store = insn & (1 << 22) == 0;
            if !store {
                regs[rd] = None;
                if insn & 0xFFC0_0000 == 0xA940_0000 {
                    regs[((insn >> 10) & 31) as usize] = None;
                }
            }
        } else {
            // Anything else may write its destination register.
            regs[rd] = None;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn adrp_ldr_and_ldp_give_addresses() {
        // At 0x10000: ADRP X0, 0x2a0000 (page delta 0x290);
        // LDR X1, [X0, #0x420]; LDR X2, [X0, #0x428];
        // ADD X3, X0, #0x10; LDP X4, X5, [X3, #16]; STR X1, [X0, #8].
        let (page, immlo) = (0x290u32, 0x290u32 & 3);
        let adrp = 0x9000_0000 | immlo << 29 | (page >> 2) << 5;
        let ldr = |rt: u32, off: u32| 0xF940_0000 | (off / 8) << 10 | rt;
        let add = 0x9100_0000 | 0x10 << 10 | 3;
        let ldp = 0xA940_0000 | 2 << 15 | 5 << 10 | 3 << 5 | 4;
        let str_ = 0xF900_0000 | 1 << 10 | 1;
        let acc = static_accesses(
            &code(&[adrp, ldr(1, 0x420), ldr(2, 0x428), add, ldp, str_]),
            0x10000,
        );
        let addrs: Vec<(u64, bool)> = acc.iter().map(|a| (a.addr, a.store)).collect();
        assert_eq!(
            addrs,
            vec![
                (0x2a0420, false),
                (0x2a0428, false),
                (0x2a0020, false),
                (0x2a0028, false),
                (0x2a0008, true)
            ]
        );
    }

    #[test]
    fn overwritten_registers_are_forgotten() {
        let adrp = 0x9000_0000;
        let mov = 0xAA01_03E0; // MOV X0, X1 (ORR)
        let ldr = 0xF940_0000 | 1;
        assert!(static_accesses(&code(&[adrp, mov, ldr]), 0).is_empty());
        // Odd lengths and garbage never panic.
        let _ = static_accesses(&[0xff; 7], u64::MAX);
    }

    #[test]
    fn random_words_give_at_most_two_accesses_each() {
        // A fixed-seed stream of words, ADRPs among them often enough that
        // every access form is reached; the fuzz target (arm64_decoder)
        // checks the same bound on arbitrary input.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut words = Vec::new();
        for i in 0..100_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let w = x as u32;
            words.push(if i % 4 == 0 {
                (w & !0x1F00_0000) | 0x9000_0000
            } else {
                w
            });
        }
        let bytes = code(&words);
        for pc in [0, 0x1000, u64::MAX - 3] {
            let out = static_accesses(&bytes, pc);
            assert!(out.len() <= 2 * words.len());
            assert!(!out.is_empty());
        }
    }
}
