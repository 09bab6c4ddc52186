//! `gopeek threads --disasm N`: N instructions from a PC, printed as
//! gdb's `x/Ni $pc` prints them: on linux/amd64 in AT&T syntax (gdb's and
//! objdump's default), on linux/arm64 in libopcodes' syntax
//! (`ldr x0, [x28, #16]`, `b.ne 0x1234 <f+8>  // b.any`); branch targets
//! (and RIP-relative operands, ADR/ADRP and literal loads) resolved to
//! symbols (`<main.spin+12>`: Go functions from the pclntab, so stripped
//! binaries too; data from `.symtab` when present) and each
//! instruction's file:line from the pclntab.
//!
//! The amd64 decoder is iced-x86, the one the locator already uses for
//! stripped binaries; arm64's is yaxpeax-arm with libopcodes' text
//! (`super::arm64_text`). Both pure Rust, so gopeek builds static with musl.

use super::arm64_text;
use super::elf::{Arch, GoBinary};
use super::pclntab::Pclntab;
use super::symbolize::frames_at;
use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter, Instruction, OpKind, Register};

/// Longest instruction of `arch` (x86: 15 bytes; arm64: one 4-byte
/// word): the bytes read per instruction asked for.
pub fn max_insn_len(arch: Arch) -> usize {
    match arch {
        Arch::Amd64 => 15,
        Arch::Arm64 => 4,
    }
}
/// Most instructions one call decodes (a bound on `--disasm N`).
pub const MAX_INSNS: usize = 4096;

/// One decoded instruction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Insn {
    /// Runtime address.
    pub address: u64,
    /// Its bytes, as the target's memory holds them.
    pub bytes: Vec<u8>,
    /// AT&T text as gdb prints it, symbols resolved.
    pub text: String,
    /// `function+offset` of the address (decimal offset, as gdb), if known.
    pub symbol: Option<String>,
    /// Source file of the address, if the pclntab says.
    pub file: Option<String>,
    /// Source line.
    pub line: Option<i32>,
}

/// Addresses to names: Go functions from the pclntab (present even in
/// stripped binaries), the runtime's data symbols from `.symtab` when it survived.
pub struct SymbolTable<'t, 'a> {
    tab: &'t Pclntab<'a>,
    /// `(link address, size, name)`, sorted by address.
    data: Vec<(u64, u64, String)>,
    bias: u64,
}

impl<'t, 'a> SymbolTable<'t, 'a> {
    /// A table for the executable `bin` loaded at `bias`.
    pub fn new(tab: &'t Pclntab<'a>, bin: &GoBinary, bias: u64) -> Self {
        let mut data = bin.symbols_by_address();
        data.sort_by_key(|d| d.0);
        SymbolTable { tab, data, bias }
    }

    /// `name+off` (or `name` at offset 0) of a runtime address.
    pub fn name(&self, addr: u64) -> Option<String> {
        let link = addr.wrapping_sub(self.bias);
        let (name, start) = match self.tab.find_func(link) {
            // The padding after a function's end is nobody's (gdb too).
            Ok(f) if link < f.end => (f.name().to_string(), f.entry),
            _ => {
                let i = self.data.partition_point(|d| d.0 <= link).checked_sub(1)?;
                let (start, size, name) = &self.data[i];
                if link >= start.saturating_add((*size).max(1)) {
                    return None;
                }
                (name.clone(), *start)
            }
        };
        Some(match link - start {
            0 => name,
            off => format!("{name}+{off}"),
        })
    }

    /// The innermost file:line of a runtime address in Go code.
    pub fn line(&self, addr: u64) -> Option<(String, i32)> {
        let link = addr.wrapping_sub(self.bias);
        let f = self.tab.find_func(link).ok()?;
        let fr = frames_at(&f, link).ok()?;
        let first = fr.first()?;
        (first.line > 0).then(|| (first.file.to_string(), first.line))
    }
}

/// Decodes up to `n` instructions of `code` (the target's bytes at `pc`),
/// with the decoder of `arch`. A truncated tail ends the list; on amd64 an
/// invalid instruction does too (gdb prints `(bad)`; the instruction is
/// kept with that text), on arm64 an undefined word is printed as
/// libopcodes does (`.inst 0x... ; undefined`) and the next word follows.
pub fn disassemble(
    arch: Arch,
    code: &[u8],
    pc: u64,
    n: usize,
    syms: &SymbolTable<'_, '_>,
) -> Vec<Insn> {
    match arch {
        Arch::Amd64 => disassemble_amd64(code, pc, n, syms),
        Arch::Arm64 => disassemble_arm64(code, pc, n, syms),
    }
}

/// arm64: one 32-bit little-endian word per instruction; a PC-relative
/// target is named right after its address (`bl 0x93cb0
/// <runtime.morestack_noctxt.abi0>`), before libopcodes' comment.
fn disassemble_arm64(code: &[u8], pc: u64, n: usize, syms: &SymbolTable<'_, '_>) -> Vec<Insn> {
    let mut out = Vec::new();
    for (i, w) in code.chunks_exact(4).take(n.min(MAX_INSNS)).enumerate() {
        let address = pc.wrapping_add(4 * i as u64);
        let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let t = arm64_text::format(word, address);
        let mut text = t.text;
        if let Some(s) = t.target.and_then(|a| syms.name(a)) {
            text.push_str(&format!(" <{s}>"));
        }
        text.push_str(&t.comment);
        let (file, line) = syms.line(address).unzip();
        out.push(Insn {
            address,
            bytes: w.to_vec(),
            text,
            symbol: syms.name(address),
            file,
            line,
        });
    }
    out
}

/// amd64: iced-x86's GAS (AT&T) text with gdb's options.
fn disassemble_amd64(code: &[u8], pc: u64, n: usize, syms: &SymbolTable<'_, '_>) -> Vec<Insn> {
    let mut fmt = GasFormatter::new();
    let o = fmt.options_mut();
    o.set_first_operand_char_index(7);
    o.set_space_after_operand_separator(false);
    o.set_uppercase_hex(false);
    o.set_hex_prefix("0x");
    o.set_hex_suffix("");
    o.set_branch_leading_zeros(false);
    o.set_leading_zeros(false);
    o.set_show_branch_size(false);
    o.set_small_hex_numbers_in_decimal(false);
    o.set_rip_relative_addresses(false);
    o.set_signed_immediate_operands(false);
    let mut dec = Decoder::with_ip(64, code, pc, DecoderOptions::NONE);
    let mut out = Vec::new();
    let mut ins = Instruction::default();
    while out.len() < n.min(MAX_INSNS) && dec.can_decode() {
        let at = dec.position();
        dec.decode_out(&mut ins);
        let len = ins.len();
        let bytes = code.get(at..at + len).unwrap_or_default().to_vec();
        let mut text = String::new();
        if ins.is_invalid() {
            text.push_str("(bad)");
        } else {
            fmt.format(&ins, &mut text);
            annotate(&ins, syms, &mut text);
        }
        let (file, line) = syms.line(ins.ip()).unzip();
        out.push(Insn {
            address: ins.ip(),
            bytes,
            text,
            symbol: syms.name(ins.ip()),
            file,
            line,
        });
        if ins.is_invalid() {
            break;
        }
    }
    out
}

/// gdb's annotations: ` <sym+off>` after a direct branch target, and
/// `        # 0xADDR <sym+off>` after a RIP-relative memory operand.
fn annotate(ins: &Instruction, syms: &SymbolTable<'_, '_>, text: &mut String) {
    let branch = (0..ins.op_count()).any(|i| {
        matches!(
            ins.op_kind(i),
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
        )
    });
    if branch {
        if let Some(s) = syms.name(ins.near_branch_target()) {
            text.push_str(&format!(" <{s}>"));
        }
    } else if ins.is_ip_rel_memory_operand() && ins.memory_base() == Register::RIP {
        let target = ins.ip_rel_memory_address();
        text.push_str(&format!("        # {target:#x}"));
        if let Some(s) = syms.name(target) {
            text.push_str(&format!(" <{s}>"));
        }
    }
}
