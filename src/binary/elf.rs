//! The target's executable, mapped read-only and indexed once.
//!
//! [`GoBinary`] owns the bytes (an mmap of the file, or a `Vec` in tests and
//! fuzzing) and keeps what the later layers ask for over and over: the
//! loadable segments (to read link-time addresses), the section table (which
//! a stripped Go binary still has, but which may also be gone), and the few
//! symbols gopeek uses when `.symtab` survives.

use super::cursor::Bytes;
use crate::memory::{Memory, MemoryError};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

impl crate::exit::ExitStatus for ElfError {
    fn exit_code(&self) -> u8 {
        match self {
            // The file is missing or unreadable: not a statement about it.
            ElfError::Open { .. } => crate::exit::FAILURE,
            _ => crate::exit::NOT_GO,
        }
    }
}

/// Why an executable could not be used.
#[allow(missing_docs)] // each variant's #[error] text documents it
#[derive(Debug, Error)]
pub enum ElfError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an ELF file gopeek can read: {source}")]
    Parse {
        path: PathBuf,
        source: object::Error,
    },
    #[error("{path}: unsupported architecture {arch} (gopeek reads linux/amd64 and linux/arm64 Go binaries)")]
    Architecture { path: PathBuf, arch: String },
}

/// CPU architecture of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// x86-64: the g register is R14 (Go's internal ABI), TLS in FS.
    Amd64,
    /// AArch64: g in R28, return addresses in the link register.
    Arm64,
}

impl Arch {
    /// GOARCH spelling.
    pub fn goarch(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// A PT_LOAD segment: where file bytes land at link time.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Link-time start address.
    pub vaddr: u64,
    /// Size in memory (`.bss` makes it larger than `filesz`).
    pub memsz: u64,
    pub(crate) file_offset: u64,
    /// Bytes backed by the file; the rest reads as zeros.
    pub filesz: u64,
    /// PF_W: data the runtime changes, so only a live read is current.
    pub writable: bool,
    /// PF_X: code.
    pub executable: bool,
}

/// A section header entry that survived stripping.
#[derive(Debug, Clone)]
pub struct Section {
    /// `.gopclntab`, `.go.buildinfo`, ...
    pub name: String,
    /// Link-time address (0 for sections not loaded).
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Raw (possibly compressed) range in the file; `None` for NOBITS.
    pub(crate) file_range: Option<(u64, u64)>,
}

/// A Go executable (or any ELF, until proven otherwise), indexed for reading.
pub struct GoBinary {
    path: PathBuf,
    bytes: Bytes,
    arch: Arch,
    position_independent: bool,
    segments: Vec<Segment>,
    sections: Vec<Section>,
    symbols: HashMap<String, (u64, u64)>,
    has_symtab: bool,
    has_dwarf: bool,
}

impl GoBinary {
    /// Maps `path` read-only. The file is not trusted: every later read is
    /// bounds-checked.
    pub fn open(path: &Path) -> Result<Self, ElfError> {
        let file = std::fs::File::open(path).map_err(|source| ElfError::Open {
            path: path.into(),
            source,
        })?;
        Self::from_file(path, &file)
    }

    /// Maps an already opened file (`path` names it in messages). Lets
    /// gopeek open a target's executable while privileged and parse it only
    /// after dropping to the invoking user (see `privilege`).
    pub fn from_file(path: &Path, file: &std::fs::File) -> Result<Self, ElfError> {
        // SAFETY: the mapping is read-only and private; if the file is
        // truncated underneath us reads may fault, which is the same risk
        // every debugger takes with a mapped executable.
        let map = unsafe { memmap2::Mmap::map(file) }.map_err(|source| ElfError::Open {
            path: path.into(),
            source,
        })?;
        Self::from_bytes_inner(path.into(), Bytes::Mapped(map))
    }

    /// Parses an in-memory image (tests, fuzzing, core-file extraction).
    pub fn from_vec(name: &str, data: Vec<u8>) -> Result<Self, ElfError> {
        Self::from_bytes_inner(PathBuf::from(name), Bytes::Owned(data))
    }

    fn from_bytes_inner(path: PathBuf, bytes: Bytes) -> Result<Self, ElfError> {
        let (arch, position_independent, segments, sections, symbols, has_symtab, has_dwarf) = {
            let file = object::File::parse(&*bytes).map_err(|source| ElfError::Parse {
                path: path.clone(),
                source,
            })?;
            let arch = match file.architecture() {
                object::Architecture::X86_64 => Arch::Amd64,
                object::Architecture::Aarch64 => Arch::Arm64,
                other => {
                    return Err(ElfError::Architecture {
                        path,
                        arch: format!("{other:?}"),
                    })
                }
            };
            if file.format() != object::BinaryFormat::Elf {
                return Err(ElfError::Architecture {
                    path,
                    arch: format!("{:?} object format", file.format()),
                });
            }
            let pie = file.kind() == object::ObjectKind::Dynamic;
            let mut segments = Vec::new();
            for seg in file.segments() {
                let (off, filesz) = seg.file_range();
                let flags = match seg.flags() {
                    object::SegmentFlags::Elf { p_flags } => p_flags,
                    _ => 0,
                };
                segments.push(Segment {
                    vaddr: seg.address(),
                    memsz: seg.size(),
                    file_offset: off,
                    filesz,
                    writable: flags & object::elf::PF_W != 0,
                    executable: flags & object::elf::PF_X != 0,
                });
            }
            let mut sections = Vec::new();
            let mut has_dwarf = false;
            for s in file.sections() {
                let name = s.name().unwrap_or("").to_string();
                if name == ".debug_info" || name == ".zdebug_info" {
                    has_dwarf = true;
                }
                sections.push(Section {
                    name,
                    addr: s.address(),
                    size: s.size(),
                    file_range: s.file_range(),
                });
            }
            let mut symbols = HashMap::new();
            let mut has_symtab = false;
            for sym in file.symbols() {
                has_symtab = true;
                if let Ok(name) = sym.name() {
                    if name.starts_with("runtime.") {
                        symbols.insert(name.to_string(), (sym.address(), sym.size()));
                    }
                }
            }
            (
                arch, pie, segments, sections, symbols, has_symtab, has_dwarf,
            )
        };
        Ok(GoBinary {
            path,
            bytes,
            arch,
            position_independent,
            segments,
            sections,
            symbols,
            has_symtab,
            has_dwarf,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    /// Which layouts, registers and unwinding rules apply.
    pub fn arch(&self) -> Arch {
        self.arch
    }
    /// ET_DYN: the kernel picks a load bias; add it to every link address.
    pub fn is_position_independent(&self) -> bool {
        self.position_independent
    }
    /// The PT_LOAD segments, for tests and tools that check the mapping.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
    /// The section headers left in the file (none when stripped with
    /// `objcopy --strip-all` of the headers).
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }
    /// The whole file.
    pub(crate) fn data(&self) -> &[u8] {
        &self.bytes
    }
    /// `.symtab` was present (`-s` not used).
    pub(crate) fn has_symtab(&self) -> bool {
        self.has_symtab
    }
    /// `.debug_info` was present (`-w` not used).
    pub fn has_dwarf(&self) -> bool {
        self.has_dwarf
    }

    /// Address of a `runtime.*` symbol from `.symtab`, when not stripped.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).map(|s| s.0)
    }

    pub(crate) fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Raw bytes of a section as stored in the file.
    pub(crate) fn section_data(&self, name: &str) -> Option<&[u8]> {
        let s = self.section(name)?;
        let (off, len) = s.file_range?;
        self.bytes
            .get(off as usize..(off.checked_add(len)?) as usize)
    }

    /// Section contents with SHF_COMPRESSED undone (Go compresses DWARF).
    pub(crate) fn section_uncompressed(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        let file = object::File::parse(&*self.bytes).ok()?;
        let s = file.section_by_name(name)?;
        s.uncompressed_data().ok()
    }

    /// The lowest PT_LOAD address, page-aligned down: the anchor for the
    /// load bias of a PIE (`first mapping of the exe with offset 0`).
    pub fn lowest_load_address(&self) -> Option<u64> {
        self.segments.iter().map(|s| s.vaddr & !0xfff).min()
    }

    /// Bytes at a link-time virtual address, if they are backed by the file.
    /// `None` for unmapped addresses and for `.bss` (zero-filled, not in
    /// the file).
    pub fn slice_at_vaddr(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let seg = self
            .segments
            .iter()
            .find(|s| addr >= s.vaddr && addr < s.vaddr.saturating_add(s.filesz))?;
        let rel = addr - seg.vaddr;
        let end = rel.checked_add(len as u64)?;
        if end > seg.filesz {
            return None;
        }
        let off = seg.file_offset.checked_add(rel)? as usize;
        self.bytes.get(off..off.checked_add(len)?)
    }

    /// The longest file-backed slice starting at `addr` (for tables whose
    /// length is only known after parsing them).
    pub(crate) fn tail_at_vaddr(&self, addr: u64) -> Option<&[u8]> {
        let seg = self
            .segments
            .iter()
            .find(|s| addr >= s.vaddr && addr < s.vaddr.saturating_add(s.filesz))?;
        let rel = addr - seg.vaddr;
        let off = seg.file_offset.checked_add(rel)? as usize;
        let end = (seg.file_offset.checked_add(seg.filesz)?) as usize;
        self.bytes.get(off..end)
    }

    /// The segment holding `addr` in memory (file-backed or `.bss`).
    pub(crate) fn segment_of(&self, addr: u64) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|s| addr >= s.vaddr && addr < s.vaddr.saturating_add(s.memsz))
    }
}

/// The executable's static image at link addresses: initialized data reads
/// as in the file, `.bss` reads as zeros. Used to read tables such as
/// `runtime.waitReasonStrings` without a process.
impl Memory for GoBinary {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let seg = self
            .segment_of(addr)
            .ok_or_else(|| MemoryError::new(addr, buf.len(), "not inside any loadable segment"))?;
        let rel = addr - seg.vaddr;
        let end = rel
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= seg.memsz)
            .ok_or_else(|| MemoryError::new(addr, buf.len(), "runs past the end of its segment"))?;
        // File-backed bytes first, then zeros (.bss); offsets are checked
        // because a hostile header can put a segment near u64::MAX.
        buf.fill(0);
        if rel < seg.filesz {
            let n = ((seg.filesz - rel).min(buf.len() as u64)) as usize;
            let start = seg
                .file_offset
                .checked_add(rel)
                .and_then(|o| usize::try_from(o).ok());
            let src = start.and_then(|o| self.bytes.get(o..o.checked_add(n)?));
            let src =
                src.ok_or_else(|| MemoryError::new(addr, end as usize, "file is truncated"))?;
            buf[..n].copy_from_slice(src);
        }
        Ok(())
    }
}

impl GoBinary {
    /// Address and size of a `runtime.*` symbol from `.symtab`.
    pub(crate) fn symbol_with_size(&self, name: &str) -> Option<(u64, u64)> {
        self.symbols.get(name).copied()
    }

    /// Every `.symtab` symbol as `(address, size, name)`, unsorted: the
    /// disassembler names data addresses with them.
    pub(crate) fn symbols_by_address(&self) -> Vec<(u64, u64, String)> {
        self.symbols
            .iter()
            .filter(|(_, &(a, _))| a != 0)
            .map(|(n, &(a, s))| (a, s, n.clone()))
            .collect()
    }
}
