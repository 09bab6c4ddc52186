//! arm64 (AArch64) instruction text as GNU objdump and gdb print it
//! (both use binutils' libopcodes), from yaxpeax-arm's decoding: the arm64
//! half of `gopeek threads --disasm N` (`binary::disasm`). Public for the
//! `arm64_decoder` fuzz target.
//!
//! yaxpeax-arm decodes the word and picks the preferred alias (`cmp`,
//! `mov`, `lsl`, `cset`, ...) much as libopcodes does; its text differs
//! from libopcodes' in number bases and a few names, which this module
//! rewrites, operand by operand:
//!
//! * immediates in decimal (`[x28, #16]`, `lsl #3`, `ubfx x0, x1, #0, #8`),
//!   except where libopcodes prints hex: arithmetic and logical immediates,
//!   `mov`/`movk`, exception numbers (`#0x10` in `add`, `mov`, `brk`);
//! * a `mov` immediate carries libopcodes' comment, the value in decimal
//!   (`mov x0, #0x5 ... // #5`), and an ORR that MOVZ/MOVN could also
//!   encode stays `orr x4, xzr, #0x400`, as libopcodes prefers;
//! * the conditions `hs`/`lo` are named `cs`/`cc`, with libopcodes' list of
//!   other names (`b.cs ... // b.hs, b.nlast`, `cset x0, cc // cc = lo,
//!   ul, last`);
//! * PC-relative operands become the absolute address (the caller names
//!   it: `bl 0x93cb0 <runtime.morestack_noctxt>`);
//! * three or four consecutive vector registers are a range
//!   (`{v0.16b-v3.16b}`); floating-point immediates in `%.18e`.
//!
//! Measured against aarch64-linux-gnu-objdump over the whole `.text` of
//! the arm64 `parked` fixtures: equal on 273,656 of 273,662 words (Go
//! 1.27), 247,026 of 247,032 (1.22), 236,577 of 236,591 (1.19); the rest
//! are SVE words (yaxpeax-arm does not decode SVE: `.inst 0x... ; not
//! decoded`) and words objdump calls `NYI` rather than `undefined`.
//!
//! Pure and bounded: one 32-bit word in, one line out, never a panic
//! (fuzzed with yaxpeax-arm by `fuzz/fuzz_targets/arm64_decoder.rs`).

use std::fmt::Write as _;
use yaxpeax_arch::{Decoder as _, U8Reader};
use yaxpeax_arm::armv8::a64::{DecodeError, InstDecoder, Instruction, Opcode, Operand, SizeCode};

/// One instruction's text, in parts, so that the caller can put the
/// symbol of `target` right after the address (`0x1234 <f+8>`) and
/// before the comment, where libopcodes puts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm64Text {
    /// `mnemonic\toperands`, the target address last when there is one.
    pub text: String,
    /// The absolute address of a PC-relative operand (branch, ADR, ADRP,
    /// literal load), to be named.
    pub target: Option<u64>,
    /// libopcodes' comment (`  // b.any`, `\t// #5`), printed after the symbol.
    pub comment: String,
}

/// libopcodes' names of each condition code, the first preferred.
const CONDS: [&[&str]; 16] = [
    &["eq", "none"],
    &["ne", "any"],
    &["cs", "hs", "nlast"],
    &["cc", "lo", "ul", "last"],
    &["mi", "first"],
    &["pl", "nfrst"],
    &["vs"],
    &["vc"],
    &["hi", "pmore"],
    &["ls", "plast"],
    &["ge", "tcont"],
    &["lt", "tstop"],
    &["gt"],
    &["le"],
    &["al"],
    &["nv"],
];

/// yaxpeax-arm's name of a condition code, as the index into [`CONDS`].
fn cond_index(name: &str) -> Option<usize> {
    const YAX: [&str; 16] = [
        "eq", "ne", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al",
        "nv",
    ];
    YAX.iter().position(|c| *c == name)
}

/// Mnemonics whose last operand is a condition libopcodes comments on.
const COND_OPS: [&str; 14] = [
    "csel", "csinc", "csinv", "csneg", "ccmp", "ccmn", "fcsel", "fccmp", "fccmpe", "cset", "csetm",
    "cinc", "cinv", "cneg",
];

/// Mnemonics whose plain immediates libopcodes prints in hex.
const HEX_IMM: [&str; 26] = [
    "add", "adds", "sub", "subs", "cmp", "cmn", "mov", "movz", "movn", "movk", "and", "ands",
    "orr", "eor", "tst", "svc", "hvc", "smc", "brk", "hlt", "dcps1", "msr", "ccmp", "ccmn",
    "fccmp", "fccmpe",
];

/// Shift and extend names: the immediate after them is decimal.
const SHIFTS: [&str; 13] = [
    "lsl", "lsr", "asr", "ror", "msl", "uxtb", "uxth", "uxtw", "uxtx", "sxtb", "sxth", "sxtw",
    "sxtx",
];

/// The text of the instruction `word` at address `pc`.
pub fn format(word: u32, pc: u64) -> Arm64Text {
    let mut ins = Instruction::default();
    let bytes = word.to_le_bytes();
    let mut reader = U8Reader::new(&bytes);
    match InstDecoder::default().decode_into(&mut ins, &mut reader) {
        Ok(()) => {}
        // The reserved space with bits 31..25 clear (UDF aside) is undefined.
        Err(DecodeError::IncompleteDecoder) if word >> 25 != 0 => {
            // SVE/SME and other extensions yaxpeax-arm does not decode.
            return plain(format!(".inst\t{word:#010x} ; not decoded (SVE/SME?)"));
        }
        Err(_) => return plain(format!(".inst\t{word:#010x} ; undefined")),
    }
    // yaxpeax-arm reads UDF's imm16 but not that bits 31..16 must be zero.
    if ins.opcode == Opcode::UDF && word >> 16 != 0 {
        return plain(format!(".inst\t{word:#010x} ; undefined"));
    }
    let target = ins.operands.iter().find_map(|o| match o {
        Operand::PCOffset(off) => Some(if ins.opcode == Opcode::ADRP {
            (pc & !0xfff).wrapping_add(*off as u64)
        } else {
            pc.wrapping_add(*off as u64)
        }),
        _ => None,
    });
    let mut raw = match orr_not_mov(&ins) {
        Some(t) => t,
        None => ins.to_string(),
    };
    fix_names(&ins, word, &mut raw);
    let (mnem, ops) = raw.split_once(' ').unwrap_or((raw.as_str(), ""));
    if mnem == "invalid" {
        // Decoded, but an encoding yaxpeax-arm itself has no name for.
        return plain(format!(".inst\t{word:#010x} ; undefined"));
    }
    let mut mnem = mnem.to_string();
    let mut comment = String::new();
    // b.hs / b.lo are libopcodes' b.cs / b.cc.
    if let Some(c) = mnem.strip_prefix("b.").and_then(cond_index) {
        let names = CONDS[c];
        mnem = format!("b.{}", names[0]);
        if names.len() > 1 {
            let others: Vec<String> = names[1..].iter().map(|n| format!("b.{n}")).collect();
            comment = format!("  // {}", others.join(", "));
        }
    }
    let mut ops = rewrite_operands(&mnem, ops, target);
    if COND_OPS.contains(&mnem.as_str()) {
        let (head, last) = ops.rsplit_once(", ").unwrap_or(("", ops.as_str()));
        if let Some(c) = cond_index(last) {
            let names = CONDS[c];
            let head = head.to_string();
            ops = if head.is_empty() {
                names[0].to_string()
            } else {
                format!("{head}, {}", names[0])
            };
            if names.len() > 1 {
                comment = format!("\t// {} = {}", names[0], names[1..].join(", "));
            }
        }
    }
    if mnem == "mov" {
        if let Some(c) = mov_comment(&ins) {
            // libopcodes pads the commented operand to 23 columns.
            if let Some((first, imm)) = ops.split_once(", ") {
                ops = format!("{first}, {imm:<23}");
            }
            comment = format!("\t// #{c}");
        }
    }
    let text = if ops.is_empty() {
        mnem
    } else {
        format!("{mnem}\t{ops}")
    };
    Arm64Text {
        text,
        target,
        comment,
    }
}

/// Names libopcodes has and yaxpeax-arm lacks: system registers (as
/// `s3_3_c4_c2_5`), PSTATE fields, `dc`/`ic` operations (as `sys`); and
/// the `uxtx` of ADD/SUB (extended register) that libopcodes keeps when
/// neither Rd nor Rn is SP.
fn fix_names(ins: &Instruction, word: u32, raw: &mut String) {
    const SYSREGS: [(&str, &str); 17] = [
        ("s3_3_c4_c2_5", "dit"),
        ("s3_3_c14_c0_0", "cntfrq_el0"),
        ("s3_3_c14_c0_1", "cntpct_el0"),
        ("s3_3_c4_c4_1", "fpsr"),
        ("s3_3_c4_c4_0", "fpcr"),
        ("s3_3_c0_c0_7", "dczid_el0"),
        ("s3_3_c4_c2_0", "nzcv"),
        ("s3_3_c4_c2_1", "daif"),
        ("s3_3_c13_c0_3", "tpidrro_el0"),
        ("s3_0_c0_c6_0", "id_aa64isar0_el1"),
        ("s3_0_c0_c6_1", "id_aa64isar1_el1"),
        ("s3_0_c0_c4_0", "id_aa64pfr0_el1"),
        ("s3_0_c0_c4_1", "id_aa64pfr1_el1"),
        ("s3_0_c0_c7_0", "id_aa64mmfr0_el1"),
        ("s3_3_c9_c13_0", "pmccntr_el0"),
        ("s3_3_c2_c4_0", "rndr"),
        ("s3_3_c2_c4_1", "rndrrs"),
    ];
    const PSTATE: [(&str, &str); 6] = [
        ("pstate.0x1a,", "dit,"),
        ("pstate.0x5,", "spsel,"),
        ("pstate.0x1e,", "daifset,"),
        ("pstate.0x1f,", "daifclr,"),
        ("pstate.0x19,", "ssbs,"),
        ("pstate.0x1c,", "tco,"),
    ];
    const SYSOPS: [(&str, &str); 6] = [
        ("sys #0x3, c7, c4, #0x1, ", "dc zva, "),
        ("sys #0x3, c7, c14, #0x1, ", "dc civac, "),
        ("sys #0x3, c7, c10, #0x1, ", "dc cvac, "),
        ("sys #0x3, c7, c11, #0x1, ", "dc cvau, "),
        ("sys #0x3, c7, c12, #0x1, ", "dc cvap, "),
        ("sys #0x3, c7, c5, #0x1, ", "ic ivau, "),
    ];
    // MSR (register): yaxpeax-arm misreads Rt 31 (the zero register).
    if word & 0xfff0_0000 == 0xd510_0000 && word & 31 == 31 {
        if let Some((head, _)) = raw.rsplit_once(", ") {
            *raw = format!("{head}, xzr");
        }
    }
    let tables: [&[(&str, &str)]; 3] = [&SYSREGS, &PSTATE, &SYSOPS];
    for t in tables {
        for (from, to) in t {
            if raw.contains(from) {
                *raw = raw.replacen(from, to, 1);
                return;
            }
        }
    }
    // ADD/SUB (extended register), 64-bit, UXTX #0, neither Rd nor Rn SP:
    // yaxpeax-arm drops the `uxtx` that libopcodes keeps.
    let (rd, rn, setflags) = (word & 31, (word >> 5) & 31, word & (1 << 29) != 0);
    if word & 0x9f20_0000 == 0x8b20_0000
        && (word >> 10) & 0x3f == 0b011_000
        && rn != 31
        && (rd != 31 || setflags)
        && !raw.ends_with("uxtx")
    {
        let _ = ins;
        raw.push_str(", uxtx");
    }
}

fn plain(text: String) -> Arm64Text {
    Arm64Text {
        text,
        target: None,
        comment: String::new(),
    }
}

/// The decimal comment libopcodes prints after a `mov` of an immediate
/// (MOVZ, MOVN, or ORR with the zero register), signed at the register's width.
fn mov_comment(ins: &Instruction) -> Option<i64> {
    let wide = !matches!(ins.operands[0], Operand::Register(SizeCode::W, _));
    let v = match (ins.opcode, ins.operands[1], ins.operands[2]) {
        (Opcode::MOVZ, Operand::ImmShift(i, s), _) => u64::from(i).checked_shl(u32::from(s))?,
        (Opcode::MOVN, Operand::ImmShift(i, s), _) => !u64::from(i).checked_shl(u32::from(s))?,
        (Opcode::ORR, Operand::Register(_, 31), Operand::Imm64(v)) => v,
        (Opcode::ORR, Operand::Register(_, 31), Operand::Immediate(v)) => u64::from(v),
        _ => return None,
    };
    Some(if wide {
        v as i64
    } else {
        i64::from(v as u32 as i32)
    })
}

/// libopcodes prints ORR Rd, ZR, #imm as `mov` only when MOVZ or MOVN
/// cannot encode the value; yaxpeax-arm always says `mov`.
fn orr_not_mov(ins: &Instruction) -> Option<String> {
    if ins.opcode != Opcode::ORR {
        return None;
    }
    let (rd, size) = match ins.operands[0] {
        Operand::RegisterOrSP(s, r) | Operand::Register(s, r) => (r, s),
        _ => return None,
    };
    if !matches!(ins.operands[1], Operand::Register(_, 31)) {
        return None;
    }
    let v = match ins.operands[2] {
        Operand::Imm64(v) => v,
        Operand::Immediate(v) => u64::from(v),
        _ => return None,
    };
    let movable = if size == SizeCode::W {
        let v = v as u32;
        let half = |x: u32| x & 0xffff == 0 || x & 0xffff_0000 == 0;
        half(v) || half(!v)
    } else {
        let one_chunk = |x: u64| (0..4).any(|i| x & !(0xffffu64 << (16 * i)) == 0);
        one_chunk(v) || one_chunk(!v)
    };
    if !movable {
        return None;
    }
    let (r, zr) = match size {
        SizeCode::W => ("w", "wzr"),
        SizeCode::X => ("x", "xzr"),
    };
    let rd = if rd == 31 {
        format!("{r}sp")
    } else {
        format!("{r}{rd}")
    };
    let rd = if rd == "xsp" { "sp".to_string() } else { rd };
    Some(format!("orr {rd}, {zr}, #{v:#x}"))
}

/// Rewrites yaxpeax-arm's operand text into libopcodes' (see the module doc).
fn rewrite_operands(mnem: &str, ops: &str, target: Option<u64>) -> String {
    let hex_default = HEX_IMM.contains(&mnem);
    let mut out = String::with_capacity(ops.len() + 8);
    let b = ops.as_bytes();
    let mut i = 0;
    let mut depth = 0i32;
    let mut after_bracket = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                after_bracket = true;
            }
            _ => {}
        }
        if c == b'$' {
            // `$+0x10` / `$-0x3cc`: PC-relative, printed as the address.
            let end = token_end(b, i + 1);
            if let Some(t) = target {
                let _ = write!(out, "{t:#x}");
            } else {
                out.push_str(&ops[i..end]);
            }
            i = end;
            continue;
        }
        if c == b'#' {
            let end = token_end(b, i + 1);
            let tok = &ops[i + 1..end];
            let prev = ops[..i].trim_end();
            let after_shift = SHIFTS.iter().any(|s| prev.ends_with(s));
            let decimal = depth > 0 || after_bracket || after_shift || !hex_default;
            out.push('#');
            out.push_str(&number(tok, decimal));
            i = end;
            continue;
        }
        if c == b'{' {
            if let Some(close) = ops[i..].find('}') {
                out.push_str(&reg_list(&ops[i..=i + close]));
                i += close + 1;
                continue;
            }
        }
        out.push(c as char);
        i += 1;
    }
    out
}

/// End of a `#`/`$` token: up to a comma, space, bracket or brace.
fn token_end(b: &[u8], from: usize) -> usize {
    let mut j = from;
    while j < b.len() && !matches!(b[j], b',' | b' ' | b']' | b'}' | b'!') {
        j += 1;
    }
    j
}

/// An immediate token (`0x10`, `-0x8`, `5`, `1.5`) in libopcodes' base.
fn number(tok: &str, decimal: bool) -> String {
    let (neg, digits) = match tok.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, tok),
    };
    if digits == "0.0" && !neg {
        // fcmp's zero (libopcodes' FPIMM0) is printed as written.
        return tok.to_string();
    }
    if digits.contains('.') || digits.contains("inf") || digits.contains("NaN") {
        return match tok.parse::<f64>() {
            Ok(f) => c_exp(f),
            Err(_) => tok.to_string(),
        };
    }
    let v = match digits.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => digits.parse::<u64>(),
    };
    let Ok(v) = v else {
        return tok.to_string();
    };
    let sign = if neg { "-" } else { "" };
    if decimal {
        format!("{sign}{v}")
    } else {
        format!("{sign}{v:#x}")
    }
}

/// C's `%.18e`: `1.000000000000000000e+00`.
fn c_exp(f: f64) -> String {
    let s = format!("{f:.18e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// `{v0.16b, v1.16b, v2.16b}` → `{v0.16b-v2.16b}`: libopcodes writes a
/// list of more than two consecutive registers as a range.
fn reg_list(list: &str) -> String {
    let inner = &list[1..list.len() - 1];
    let regs: Vec<&str> = inner.split(", ").collect();
    if regs.len() <= 2 {
        return list.to_string();
    }
    let parse = |r: &str| -> Option<(u32, String)> {
        let r = r.strip_prefix('v')?;
        let (n, rest) = r.split_once('.')?;
        Some((n.parse().ok()?, rest.to_string()))
    };
    let parsed: Option<Vec<(u32, String)>> = regs.iter().map(|r| parse(r)).collect();
    let Some(p) = parsed else {
        return list.to_string();
    };
    let consecutive = p
        .windows(2)
        .all(|w| w[1].0 == w[0].0 + 1 && w[1].1 == w[0].1);
    if consecutive {
        format!("{{{}-{}}}", regs[0], regs[regs.len() - 1])
    } else {
        list.to_string()
    }
}

#[cfg(test)]
mod tests {
    //! Instruction words built here from the A64 encoding fields (or, for
    //! encodings with packed immediates, taken from the 1.27 `parked`
    //! fixture), each expected text as aarch64-linux-gnu-objdump prints it
    //! (its target in gdb's `0x` form).
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
}
