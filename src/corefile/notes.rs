//! The notes of a core's PT_NOTE segment that gopeek reads, decoded from
//! their kernel layouts (`struct elf_prstatus`, `elf_prpsinfo`, the auxv
//! pairs and the NT_FILE table). Each decoder checks every length;
//! unknown or short notes are skipped, never trusted.

use crate::binary::elf::Arch;

/// NT_PRSTATUS: one thread's status and general registers.
const NT_PRSTATUS: u32 = 1;
/// NT_PRPSINFO: the process's name, command line and ids.
const NT_PRPSINFO: u32 = 3;
/// NT_AUXV: the auxiliary vector (entry point, program headers).
const NT_AUXV: u32 = 6;
/// NT_FILE: the file-backed mappings ("FILE" in ASCII).
const NT_FILE: u32 = 0x4649_4c45;

/// Offset of `pr_pid` in `struct elf_prstatus` (after the siginfo, the
/// current signal and the two signal sets), the same on amd64 and arm64.
const PR_PID: usize = 32;
/// Offset of `pr_cursig`.
const PR_CURSIG: usize = 12;
/// Offset of `pr_reg` (after the four `timeval`s).
const PR_REG: usize = 112;
/// Most file mappings accepted from one NT_FILE note.
const MAX_FILES: u64 = 1 << 20;

/// One thread of the dead process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreThread {
    /// Its kernel thread id (what `m.procid` holds).
    pub tid: i32,
    /// The signal it was handling when the core was written (0: none).
    pub signal: u16,
    /// Its general registers in the kernel's order (`user_regs_struct`
    /// on amd64, `user_pt_regs` on arm64).
    pub regs: Vec<u64>,
    arch: Arch,
}

impl CoreThread {
    fn reg(&self, i: usize) -> u64 {
        self.regs.get(i).copied().unwrap_or(0)
    }

    /// The program counter (rip, pc).
    pub fn pc(&self) -> u64 {
        match self.arch {
            Arch::Amd64 => self.reg(16),
            Arch::Arm64 => self.reg(32),
        }
    }

    /// The stack pointer (rsp, sp).
    pub fn sp(&self) -> u64 {
        match self.arch {
            Arch::Amd64 => self.reg(19),
            Arch::Arm64 => self.reg(31),
        }
    }

    /// The link register (x30) on arm64: the leaf frame's return address.
    pub fn lr(&self) -> Option<u64> {
        match self.arch {
            Arch::Amd64 => None,
            Arch::Arm64 => Some(self.reg(30)),
        }
    }

    /// The frame pointer (rbp, x29).
    pub fn fp(&self) -> u64 {
        match self.arch {
            Arch::Amd64 => self.reg(4),
            Arch::Arm64 => self.reg(29),
        }
    }

    /// The registers gdb's `info registers` lists, in its order, from
    /// the kernel's order in NT_PRSTATUS (`gopeek threads --core`).
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        // user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx
        // rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base gs_base ds es
        // fs gs.
        const AMD64: [(&str, usize); 26] = [
            ("rax", 10),
            ("rbx", 5),
            ("rcx", 11),
            ("rdx", 12),
            ("rsi", 13),
            ("rdi", 14),
            ("rbp", 4),
            ("rsp", 19),
            ("r8", 9),
            ("r9", 8),
            ("r10", 7),
            ("r11", 6),
            ("r12", 3),
            ("r13", 2),
            ("r14", 1),
            ("r15", 0),
            ("rip", 16),
            ("eflags", 18),
            ("cs", 17),
            ("ss", 20),
            ("ds", 23),
            ("es", 24),
            ("fs", 25),
            ("gs", 26),
            ("fs_base", 21),
            ("gs_base", 22),
        ];
        const ARM64: [&str; 34] = [
            "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
            "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25",
            "x26", "x27", "x28", "x29", "x30", "sp", "pc", "cpsr",
        ];
        match self.arch {
            Arch::Amd64 => AMD64.iter().map(|&(n, i)| (n, self.reg(i))).collect(),
            Arch::Arm64 => ARM64
                .iter()
                .enumerate()
                .map(|(i, &n)| (n, self.reg(i)))
                .collect(),
        }
    }

    /// The register Go keeps the current g in (R14 on amd64 from 1.17's
    /// register ABI, R28 on arm64).
    pub fn g_register(&self) -> u64 {
        match self.arch {
            Arch::Amd64 => self.reg(1),
            Arch::Arm64 => self.reg(28),
        }
    }
}

/// One NT_FILE entry: `[start, end)` maps `path` from `file_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    /// First address of the mapping.
    pub start: u64,
    /// One past its last address.
    pub end: u64,
    /// Byte offset in the file of `start`.
    pub file_offset: u64,
    /// The file's path as the kernel saw it when the core was written.
    pub path: String,
}

/// What the notes said, gathered.
#[derive(Default)]
pub(super) struct Parsed {
    pub(super) threads: Vec<CoreThread>,
    pub(super) files: Vec<FileMapping>,
    pub(super) auxv: Vec<(u64, u64)>,
    pub(super) pid: Option<i32>,
    pub(super) psargs: Option<String>,
    pub(super) fname: Option<String>,
}

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(off..off + 2)?.try_into().ok()?))
}

fn i32_at(d: &[u8], off: usize) -> Option<i32> {
    Some(i32::from_le_bytes(d.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        d.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A NUL-terminated (or full-width) C string field.
fn c_string(d: &[u8]) -> String {
    let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
    String::from_utf8_lossy(&d[..end]).into_owned()
}

impl Parsed {
    /// Decodes one note; notes of other owners and types are ignored.
    pub(super) fn add(&mut self, arch: Arch, name: &[u8], n_type: u32, desc: &[u8]) {
        // Linux writes "CORE" (and "LINUX" for extended register sets).
        if name != b"CORE" {
            return;
        }
        match n_type {
            NT_PRSTATUS => {
                let nregs = match arch {
                    Arch::Amd64 => 27,
                    Arch::Arm64 => 34,
                };
                let Some(tid) = i32_at(desc, PR_PID) else {
                    return;
                };
                let regs: Option<Vec<u64>> =
                    (0..nregs).map(|i| u64_at(desc, PR_REG + 8 * i)).collect();
                let Some(regs) = regs else { return };
                self.threads.push(CoreThread {
                    tid,
                    signal: u16_at(desc, PR_CURSIG).unwrap_or(0),
                    regs,
                    arch,
                });
            }
            NT_PRPSINFO => {
                // pr_pid at 24, pr_fname[16] at 40, pr_psargs[80] at 56.
                self.pid = i32_at(desc, 24).filter(|&p| p > 0);
                self.fname = desc.get(40..56).map(c_string);
                self.psargs = desc.get(56..136).map(c_string);
            }
            NT_AUXV => {
                self.auxv = desc
                    .chunks_exact(16)
                    .filter_map(|c| Some((u64_at(c, 0)?, u64_at(c, 8)?)))
                    .take_while(|&(k, _)| k != 0)
                    .collect();
            }
            NT_FILE => self.files = parse_nt_file(desc).unwrap_or_default(),
            _ => {}
        }
    }
}

/// The NT_FILE table: count, page size, `count` (start, end, page offset)
/// triples, then `count` NUL-terminated paths.
fn parse_nt_file(desc: &[u8]) -> Option<Vec<FileMapping>> {
    let count = u64_at(desc, 0)?;
    let page = u64_at(desc, 8)?;
    if count > MAX_FILES || count.checked_mul(24)? > desc.len() as u64 {
        return None;
    }
    let count = count as usize;
    let mut names = desc.get(16 + 24 * count..)?.split(|&b| b == 0);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let base = 16 + 24 * i;
        let start = u64_at(desc, base)?;
        let end = u64_at(desc, base + 8)?;
        let pgoff = u64_at(desc, base + 16)?;
        let path = String::from_utf8_lossy(names.next()?).into_owned();
        if end < start {
            return None;
        }
        out.push(FileMapping {
            start,
            end,
            file_offset: pgoff.checked_mul(page)?,
            path,
        });
    }
    Some(out)
}
