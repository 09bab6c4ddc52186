//! A frame's registers, by DWARF register number, for the variables Go
//! keeps in registers at a PC. Only the innermost frame of a goroutine
//! that was running on a thread when that thread was stopped (or when the
//! core was written) has them: a parked goroutine's and a caller's
//! registers were overwritten long ago (Go saves none across calls).

/// The largest DWARF register number kept (arm64's `sp` is 31).
const NREGS: usize = 32;

/// Whether, and how, a frame's registers are known.
// One per frame read (a few hundred bytes, copied a handful of times).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameRegs {
    /// A caller's frame, or a goroutine not running: its registers are
    /// not its own.
    #[default]
    NotOwn,
    /// The innermost frame of a goroutine that runs while its memory is
    /// read: registers from another instant would mix two states.
    Running,
    /// The innermost frame of a running goroutine, read under the hold
    /// that took these registers (or from a core).
    Held(Regs),
}

/// Integer registers by DWARF number (amd64: rax 0, rdx 1, rcx 2, rbx 3,
/// rsi 4, rdi 5, rbp 6, rsp 7, r8-r15 8-15, rip 16; arm64: x0-x30 0-30,
/// sp 31). Vector registers are not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regs {
    vals: [Option<u64>; NREGS],
}

const AMD64: [&str; 17] = [
    "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip",
];

impl Regs {
    /// From gdb-style `(name, value)` pairs (what `threads` and the core
    /// reader list); `None` when neither architecture's names are there.
    pub fn from_named(named: &[(&str, u64)]) -> Option<Regs> {
        let mut vals = [None; NREGS];
        let mut any = false;
        for &(name, v) in named {
            let n = match AMD64.iter().position(|&r| r == name) {
                Some(i) => i,
                None => match name {
                    "sp" => 31,
                    _ => match name.strip_prefix('x').and_then(|d| d.parse::<usize>().ok()) {
                        Some(i) if i <= 30 => i,
                        _ => continue,
                    },
                },
            };
            vals[n] = Some(v);
            any = true;
        }
        any.then_some(Regs { vals })
    }

    /// The register DWARF calls `n`, if read.
    pub fn get(&self, n: u16) -> Option<u64> {
        self.vals.get(usize::from(n)).copied().flatten()
    }
}

/// DWARF register `n` as Go's assembler names it (`AX`, `X0` on amd64;
/// `R0`, `F0` on arm64), for messages.
pub fn reg_name(n: u16, arm64: bool) -> String {
    const GO_AMD64: [&str; 17] = [
        "AX", "DX", "CX", "BX", "SI", "DI", "BP", "SP", "R8", "R9", "R10", "R11", "R12", "R13",
        "R14", "R15", "PC",
    ];
    match (arm64, n) {
        (false, 0..=16) => GO_AMD64[usize::from(n)].to_string(),
        (false, 17..=32) => format!("X{}", n - 17),
        (true, 0..=30) => format!("R{n}"),
        (true, 31) => "RSP".to_string(),
        (true, 64..=95) => format!("F{}", n - 64),
        _ => format!("DWARF register {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_dwarf_numbers() {
        let r = Regs::from_named(&[("rax", 1), ("rbx", 2), ("r15", 3), ("eflags", 9)]).unwrap();
        assert_eq!(
            (r.get(0), r.get(3), r.get(15), r.get(1)),
            (Some(1), Some(2), Some(3), None)
        );
        let a = Regs::from_named(&[("x0", 5), ("x30", 6), ("sp", 7), ("pc", 8)]).unwrap();
        assert_eq!(
            (a.get(0), a.get(30), a.get(31), a.get(32)),
            (Some(5), Some(6), Some(7), None)
        );
        assert!(Regs::from_named(&[("cpsr", 1)]).is_none());
        assert_eq!(reg_name(3, false), "BX");
        assert_eq!(reg_name(17, false), "X0");
        assert_eq!(reg_name(31, true), "RSP");
        assert_eq!(reg_name(200, false), "DWARF register 200");
    }
}
