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
        // yaxpeax-arm's Display has `unreachable!()` arms: never seen in a
        // sweep of a million words nor by the fuzzer, but the word comes
        // from the target, so a panic there is a word not decoded.
        None => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ins.to_string())) {
            Ok(t) => t,
            Err(_) => return plain(format!(".inst\t{word:#010x} ; not decoded")),
        },
    };
    fix_names(word, &mut raw);
    let (mnem, ops) = raw.split_once(' ').unwrap_or((raw.as_str(), ""));
    if mnem == "invalid" {
        // Decoded, but an encoding yaxpeax-arm itself has no name for.
        return plain(format!(".inst\t{word:#010x} ; undefined"));
    }
    let mut mnem = mnem.to_string();
    let mut comment = String::new();
    // b.hs / b.lo are libopcodes' b.cs / b.cc.
    // (bc.cond, FEAT_HBC, alike.)
    let cond = |p: &'static str| Some(p).zip(mnem.strip_prefix(p).and_then(cond_index));
    if let Some((p, c)) = cond("b.").or_else(|| cond("bc.")) {
        let names = CONDS[c];
        mnem = format!("{p}{}", names[0]);
        if names.len() > 1 {
            let others: Vec<String> = names[1..].iter().map(|n| format!("{p}{n}")).collect();
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
fn fix_names(word: u32, raw: &mut String) {
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
    if let Some(t) = add_sub_extended(word) {
        *raw = t;
    }
    // A shift other than LSL keeps its `#0` in libopcodes' text.
    for sh in [", lsr", ", asr", ", ror"] {
        if raw.ends_with(sh) {
            raw.push_str(" #0");
        }
    }
}

/// ADD/ADDS/SUB/SUBS (extended register), from the word: yaxpeax-arm
/// prints UXTW/UXTX as `lsl` and drops a zero `uxtx`; libopcodes keeps the
/// extension, except `lsl` (or nothing) when Rd or Rn is SP and the
/// extension is the register's own width.
fn add_sub_extended(word: u32) -> Option<String> {
    let (imm3, option) = ((word >> 10) & 7, ((word >> 13) & 7) as usize);
    if word & 0x1f20_0000 != 0x0b20_0000 || (word >> 22) & 3 != 0 || imm3 > 4 {
        return None;
    }
    let (sf, sub, s) = (
        word >> 31 != 0,
        (word >> 30) & 1 != 0,
        (word >> 29) & 1 != 0,
    );
    let (rd, rn, rm) = (word & 31, (word >> 5) & 31, (word >> 16) & 31);
    let reg = |x: bool, r: u32, sp: bool| match (r, sp, x) {
        (31, true, true) => "sp".to_string(),
        (31, true, false) => "wsp".to_string(),
        (31, false, _) => format!("{}zr", if x { 'x' } else { 'w' }),
        _ => format!("{}{r}", if x { 'x' } else { 'w' }),
    };
    const EXT: [&str; 8] = [
        "uxtb", "uxth", "uxtw", "uxtx", "sxtb", "sxth", "sxtw", "sxtx",
    ];
    let own_width = option == if sf { 3 } else { 2 };
    let ext = match ((rd == 31 && !s) || rn == 31, own_width, imm3) {
        (true, true, 0) => String::new(),
        (true, true, n) => format!(", lsl #{n}"),
        (_, _, 0) => format!(", {}", EXT[option]),
        (_, _, n) => format!(", {} #{n}", EXT[option]),
    };
    let (rn, rm) = (reg(sf, rn, true), reg(option & 3 == 3, rm, false));
    if s && rd == 31 {
        let m = if sub { "cmp" } else { "cmn" };
        return Some(format!("{m} {rn}, {rm}{ext}"));
    }
    let m = ["add", "adds", "sub", "subs"][usize::from(sub) * 2 + usize::from(s)];
    Some(format!("{m} {}, {rn}, {rm}{ext}", reg(sf, rd, !s)))
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
#[path = "arm64_text_tests.rs"]
mod tests;
