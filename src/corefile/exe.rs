//! Which executable a core belongs to, and proof that it does: the path
//! from NT_FILE (or the command line qemu leaves in NT_PRPSINFO), the load
//! bias from AT_ENTRY, and the executable's bytes compared with what the
//! core holds at the same addresses (the Go build id note, the GNU build
//! id, else the first text page the core kept). A mismatch is an error,
//! never a dump read with the wrong tables.

use super::memory::ExeRange;
use super::{CoreError, CoreFile, AT_ENTRY};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{LittleEndian as LE, Object, ObjectSection};
use std::path::{Path, PathBuf};

/// Bytes compared when no build id is in the core.
const PAGE: u64 = 4096;
/// Most read-only bytes compared with the core.
const MAX_COMPARE: u64 = 256 << 20;
/// Most pages looked up in the core while comparing (twice what
/// [`MAX_COMPARE`] allows to match, so holes in the core do not stop the
/// check early on a real executable).
const MAX_PAGES: u64 = 2 * (MAX_COMPARE / PAGE);

/// What checking the executable against the core found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExeMatch {
    /// Runtime address minus link address.
    pub bias: u64,
    /// The executable's read-only file ranges at their runtime addresses,
    /// to fill in what the core left out.
    pub ranges: Vec<ExeRange>,
    /// What was compared ("Go build id", "GNU build id", "text at 0x..."),
    /// or `None` when the core holds none of the executable's bytes.
    pub checked_by: Option<String>,
}

/// The executable the core names: NT_FILE's mapping of the entry point,
/// else (qemu writes no NT_FILE) the command line's first word.
pub fn exe_path(core: &CoreFile) -> Result<PathBuf, CoreError> {
    if let Some(p) = core.exe_path_from_notes() {
        return Ok(PathBuf::from(p.strip_suffix(" (deleted)").unwrap_or(p)));
    }
    let arg0 = core
        .psargs()
        .and_then(|a| a.split(' ').next())
        .filter(|a| !a.is_empty());
    match arg0 {
        Some(a) if Path::new(a).is_absolute() => Ok(PathBuf::from(a)),
        Some(a) => Ok(core.path().parent().unwrap_or(Path::new(".")).join(a)),
        None => Err(CoreError::NoExecutable {
            path: core.path().into(),
        }),
    }
}

/// Checks `exe` (the executable's bytes, named `exe_path`) against the core.
pub fn check(core: &CoreFile, exe_path: &Path, exe: &[u8]) -> Result<ExeMatch, CoreError> {
    let mismatch = |why: String| CoreError::ExeMismatch {
        core: core.path().into(),
        exe: exe_path.into(),
        why,
    };
    let file = ElfFile64::<LE>::parse(exe)
        .map_err(|e| mismatch(format!("it is not a 64-bit ELF executable ({e})")))?;
    let machine = file.elf_header().e_machine(LE);
    let core_machine = match core.arch() {
        crate::binary::elf::Arch::Amd64 => object::elf::EM_X86_64,
        crate::binary::elf::Arch::Arm64 => object::elf::EM_AARCH64,
    };
    if machine != core_machine {
        return Err(mismatch(format!(
            "the executable is for machine {machine}, the core for {core_machine}"
        )));
    }
    let loads: Vec<_> = file
        .elf_program_headers()
        .iter()
        .filter(|p| p.p_type(LE) == object::elf::PT_LOAD)
        .collect();
    let fixed = file.elf_header().e_type(LE) == object::elf::ET_EXEC;
    let bias = match core.auxv(AT_ENTRY) {
        // A fixed-address executable runs where it was linked.
        Some(at_entry) if fixed && at_entry != file.entry() => {
            return Err(mismatch(format!(
                "the core's entry point is {at_entry:#x}, the executable's {:#x}",
                file.entry()
            )))
        }
        Some(at_entry) => {
            let bias = at_entry.wrapping_sub(file.entry());
            if bias % PAGE != 0 {
                return Err(mismatch(format!(
                    "the core's entry point {at_entry:#x} is not the executable's ({:#x}) at a page-aligned load address",
                    file.entry()
                )));
            }
            bias
        }
        None => {
            // No auxv: the mapping at file offset 0 against the lowest
            // PT_LOAD.
            let low = loads.iter().map(|p| p.p_vaddr(LE)).min().unwrap_or(0);
            core.files()
                .iter()
                .find(|f| f.file_offset == 0 && f.path == exe_path.to_string_lossy())
                .map(|f| f.start.wrapping_sub(low & !(PAGE - 1)))
                .unwrap_or(0)
        }
    };
    let ranges = loads
        .iter()
        .filter(|p| p.p_flags(LE) & object::elf::PF_W == 0)
        .map(|p| ExeRange {
            start: p.p_vaddr(LE).wrapping_add(bias),
            end: p
                .p_vaddr(LE)
                .wrapping_add(bias)
                .saturating_add(p.p_filesz(LE)),
            file_offset: p.p_offset(LE),
        })
        .collect();
    let mut checked_by = None;
    for (name, what) in [
        (".note.go.buildid", "Go build id"),
        (".note.gnu.build-id", "GNU build id"),
    ] {
        let Some(sec) = file.section_by_name(name) else {
            continue;
        };
        let Ok(want) = sec.data() else { continue };
        let addr = sec.address().wrapping_add(bias);
        if let Some(got) = core.core_bytes(addr, want.len()) {
            if got != want {
                return Err(mismatch(format!(
                    "its {what} differs from the one in the core at {addr:#x}"
                )));
            }
            checked_by = Some(what.to_string());
            break;
        }
    }
    if checked_by.is_none() {
        // No build id in the core (qemu leaves text out): the build info
        // (module, settings, VCS revision) and every read-only byte the
        // core kept must agree.
        if let Some(sec) = file.section_by_name(".go.buildinfo") {
            if let Ok(want) = sec.data() {
                let addr = sec.address().wrapping_add(bias);
                if let Some(got) = core.core_bytes(addr, want.len()) {
                    if got != want {
                        return Err(mismatch(format!(
                            "its build info differs from the one in the core at {addr:#x}"
                        )));
                    }
                    checked_by = Some("Go build info".to_string());
                }
            }
        }
        if let Some(text) = compare_text(core, exe, &loads, bias).map_err(mismatch)? {
            checked_by = Some(match checked_by {
                Some(b) => format!("{b} and {text}"),
                None => text,
            });
        }
    }
    Ok(ExeMatch {
        bias,
        ranges,
        checked_by,
    })
}

/// Compares every read-only segment's bytes the core kept, page by page
/// (at most [`MAX_COMPARE`] bytes compared and [`MAX_PAGES`] pages looked
/// at in all: the program headers are the executable's to lie about, and
/// a `p_filesz` of 2^63 must not become 2^51 lookups).
fn compare_text(
    core: &CoreFile,
    exe: &[u8],
    loads: &[&object::elf::ProgramHeader64<LE>],
    bias: u64,
) -> Result<Option<String>, String> {
    let mut compared = 0u64;
    let mut examined = 0u64;
    let mut first = None;
    for p in loads
        .iter()
        .filter(|p| p.p_flags(LE) & object::elf::PF_W == 0)
    {
        let (vaddr, off) = (p.p_vaddr(LE), p.p_offset(LE));
        // Only what the file really holds can be compared.
        let filesz = p.p_filesz(LE).min((exe.len() as u64).saturating_sub(off));
        let mut o = 0;
        while o < filesz && compared < MAX_COMPARE && examined < MAX_PAGES {
            examined += 1;
            let n = (filesz - o).min(PAGE);
            let want = usize::try_from(off + o)
                .ok()
                .and_then(|s| exe.get(s..s.checked_add(n as usize)?));
            let addr = vaddr.wrapping_add(bias).wrapping_add(o);
            if let (Some(want), Some(got)) = (want, core.core_bytes(addr, n as usize)) {
                if got != want {
                    return Err(format!(
                        "its bytes at {addr:#x} differ from the ones in the core"
                    ));
                }
                compared += n;
                first.get_or_insert(addr);
            }
            o += n;
        }
    }
    Ok(first.map(|a| format!("{compared} read-only bytes from {a:#x}")))
}
