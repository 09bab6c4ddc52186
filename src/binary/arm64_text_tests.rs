//! Unit tests of `arm64_text`: instruction words built here from the
//! A64 encoding fields (or, for encodings with packed immediates, taken
//! from the 1.27 `parked` fixture), each expected text as
//! aarch64-linux-gnu-objdump prints it (its target in gdb's `0x` form).
use super::*;

fn ldr_x_uimm(rt: u32, rn: u32, off: u32) -> u32 {
    0xf940_0000 | (off / 8) << 10 | rn << 5 | rt
}
fn bl(from: u64, to: u64) -> u32 {
    0x9400_0000 | ((to.wrapping_sub(from) as u32 >> 2) & 0x03ff_ffff)
}
fn b_cond(from: u64, to: u64, cond: u32) -> u32 {
    0x5400_0000 | ((to.wrapping_sub(from) as u32 >> 2) & 0x7ffff) << 5 | cond
}
fn cbz_x(from: u64, to: u64, rt: u32) -> u32 {
    0xb400_0000 | ((to.wrapping_sub(from) as u32 >> 2) & 0x7ffff) << 5 | rt
}
fn tbnz(from: u64, to: u64, rt: u32, bit: u32) -> u32 {
    let b5 = bit >> 5;
    0x3700_0000
        | b5 << 31
        | (bit & 31) << 19
        | ((to.wrapping_sub(from) as u32 >> 2) & 0x3fff) << 5
        | rt
}
fn adrp(from: u64, page: u64, rd: u32) -> u32 {
    let pages = (page.wrapping_sub(from & !0xfff) >> 12) as u32;
    0x9000_0000 | (pages & 3) << 29 | ((pages >> 2) & 0x7ffff) << 5 | rd
}
fn movz_x(rd: u32, imm: u32) -> u32 {
    0xd280_0000 | imm << 5 | rd
}
fn str_pre(rt: u32, rn: u32, off: i32) -> u32 {
    0xf800_0c00 | ((off as u32) & 0x1ff) << 12 | rn << 5 | rt
}

/// ADD Xd, Xn, Rm, EXTEND #imm3 (extended register, 64-bit).
fn add_ext(rd: u32, rn: u32, rm: u32, option: u32, imm3: u32) -> u32 {
    0x8b20_0000 | rm << 16 | option << 13 | imm3 << 10 | rn << 5 | rd
}

fn line(word: u32, pc: u64) -> (String, Option<u64>) {
    let t = format(word, pc);
    (format!("{}{}", t.text, t.comment), t.target)
}

#[test]
fn synthetic_words_print_as_objdump() {
    let pc = 0x12030;
    let cases: Vec<(u32, &str, Option<u64>)> = vec![
        (ldr_x_uimm(16, 28, 16), "ldr\tx16, [x28, #16]", None),
        (bl(pc, 0x93cb0), "bl\t0x93cb0", Some(0x93cb0)),
        (
            b_cond(pc, 0x12188, 9),
            "b.ls\t0x12188  // b.plast",
            Some(0x12188),
        ),
        (
            b_cond(pc, 0x12000, 1),
            "b.ne\t0x12000  // b.any",
            Some(0x12000),
        ),
        (
            b_cond(pc, 0x12040, 2),
            "b.cs\t0x12040  // b.hs, b.nlast",
            Some(0x12040),
        ),
        (b_cond(pc, 0x12040, 13), "b.le\t0x12040", Some(0x12040)),
        (cbz_x(pc, 0x120d8, 1), "cbz\tx1, 0x120d8", Some(0x120d8)),
        (
            tbnz(pc, 0x12010, 3, 63),
            "tbnz\tx3, #63, 0x12010",
            Some(0x12010),
        ),
        (adrp(pc, 0x24e000, 0), "adrp\tx0, 0x24e000", Some(0x24e000)),
        (
            movz_x(24, 5),
            "mov\tx24, #0x5                   \t// #5",
            None,
        ),
        (str_pre(30, 31, -48), "str\tx30, [sp, #-48]!", None),
        (0xd503_201f, "nop", None),
        (0xd65f_03c0, "ret", None),
        (0x0000_0000, "udf\t#0", None),
        (0x2000_0028, ".inst\t0x20000028 ; undefined", None),
        // From the fixture: packed immediates and aliases.
        (0x9a9f_07e1, "cset\tx1, ne\t// ne = any", None),
        (0x9115_0000, "add\tx0, x0, #0x540", None),
        (0xd340_1c02, "ubfx\tx2, x0, #0, #8", None),
        (0xd37d_f023, "lsl\tx3, x1, #3", None),
        (
            0x9a9f_30a3,
            "csel\tx3, x5, xzr, cc\t// cc = lo, ul, last",
            None,
        ),
        (0xb276_03e4, "orr\tx4, xzr, #0x400", None),
        (0xeb06_00ff, "cmp\tx7, x6", None),
        (0xacc1_4430, "ldp\tq16, q17, [x1], #32", None),
        (0xd51b_42bf, "msr\tdit, xzr", None),
        (0x4c9f_2020, "st1\t{v0.16b-v3.16b}, [x1], #64", None),
        (0x1e6e_1001, "fmov\td1, #1.000000000000000000e+00", None),
        (0xa92e_fbfd, "stp\tx29, x30, [sp, #-280]", None),
        (0xd50b_7420, "dc\tzva, x0", None),
        // ADD/SUB (extended register): Rm's extension as libopcodes keeps it.
        (add_ext(13, 4, 3, 2, 2), "add\tx13, x4, w3, uxtw #2", None),
        (0x8b3b_60db, "add\tx27, x6, x27, uxtx", None),
        (add_ext(31, 31, 1, 3, 0), "add\tsp, sp, x1", None),
        (0xeb22_c03f, "cmp\tx1, w2, sxtw", None),
        // SUB (shifted register), LSR #0: the zero shift is kept.
        (0x4b42_0020, "sub\tw0, w1, w2, lsr #0", None),
    ];
    for (word, want, target) in cases {
        assert_eq!(
            line(word, pc),
            (want.to_string(), target),
            "word {word:#010x}"
        );
    }
}

#[test]
fn every_word_of_a_sweep_formats() {
    // A bounded sweep across the encoding space (every 4,099th word,
    // about a million): one line each, never empty, never a panic, and
    // a target only from a PC-relative class.
    let mut w: u32 = 0;
    loop {
        let t = format(w, 0x1000);
        assert!(!t.text.is_empty(), "{w:#010x}");
        if t.target.is_some() {
            let pc_relative = w & 0x7c00_0000 == 0x1400_0000 // B, BL
                || w & 0xff00_0000 == 0x5400_0000 // B.cond
                || w & 0x7c00_0000 == 0x3400_0000 // CBZ/CBNZ, TBZ/TBNZ
                || w & 0x1f00_0000 == 0x1000_0000 // ADR, ADRP
                || w & 0xffc0_0000 == 0x5500_0000 // RETAASPPC, RETABSPPC
                || w & 0xffc0_0000 == 0xf380_0000 // AUTIASPPC, AUTIBSPPC
                || w & 0x3b00_0000 == 0x1800_0000; // LDR (literal), PRFM
            assert!(pc_relative, "{w:#010x}: {}", t.text);
        }
        match w.checked_add(4_099) {
            Some(n) => w = n,
            None => break,
        }
    }
}
