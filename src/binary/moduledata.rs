//! Finding the pclntab and the runtime's `firstmoduledata` in an executable,
//! with or without section headers.
//!
//! The module data is where Go keeps what the pclntab header no longer
//! holds: the text base (pcHeader.textStart is 0 from Go 1.26) and the
//! `go:func.*` base that funcdata offsets (inline trees) are relative to.

use crate::binary::elf::GoBinary;
use crate::binary::pclntab::{magic_version, Pclntab};
use crate::memory::MemoryExt;
use thiserror::Error;

/// Why the runtime tables could not be found.
#[derive(Debug, Error)]
pub enum ModuleDataError {
    #[error("no Go pclntab found (no .gopclntab section and no pclntab magic in any segment): not a Go binary, or a Go older than 1.18")]
    NoPclntab,
    #[error("the Go runtime's module data was not found ({0}); inline frames and Go 1.26+ text addresses need it")]
    NotFound(String),
}

/// How the pclntab was found, for `gopeek info`.
#[derive(Debug, Clone)]
pub(crate) struct PclntabLocation {
    pub(crate) addr: u64,
    pub(crate) how: String,
}

/// Looks for the pclntab: by section name (`.gopclntab`, or
/// `.data.rel.ro.gopclntab` in PIE builds up to Go 1.25), else by scanning
/// the loadable segments (read-only ones first) for a plausible header.
pub(crate) fn find_pclntab(bin: &GoBinary) -> Result<PclntabLocation, ModuleDataError> {
    for name in [".gopclntab", ".data.rel.ro.gopclntab"] {
        if let Some(s) = bin.section(name) {
            if s.addr != 0 && bin.slice_at_vaddr(s.addr, 8).is_some() {
                return Ok(PclntabLocation {
                    addr: s.addr,
                    how: format!("section {name}"),
                });
            }
        }
    }
    let mut segs: Vec<_> = bin.segments().iter().collect();
    segs.sort_by_key(|s| s.writable);
    for seg in segs {
        let Some(data) = bin.slice_at_vaddr(seg.vaddr, seg.filesz as usize) else {
            continue;
        };
        let mut i = 0usize;
        while i + 0x48 <= data.len() {
            let magic = u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            if magic_version(magic).is_ok()
                && data[i + 4] == 0
                && data[i + 5] == 0
                && matches!(data[i + 6], 1 | 2 | 4)
                && data[i + 7] == 8
            {
                let addr = seg.vaddr + i as u64;
                // A real header parses and its first function table entry
                // is plausible; stray magic bytes rarely do.
                if Pclntab::parse(&data[i..], addr, Some(0))
                    .map(|p| p.nfunc() > 0)
                    .unwrap_or(false)
                {
                    return Ok(PclntabLocation {
                        addr,
                        how: "magic scan (no section headers)".into(),
                    });
                }
            }
            i += 8;
        }
    }
    Err(ModuleDataError::NoPclntab)
}

/// The fields of `runtime.moduledata` that gopeek uses. Their offsets are
/// the same from Go 1.18 to 1.27 except `gofunc`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ModuleData {
    pub(crate) addr: u64,
    #[serde(skip)]
    pub(crate) how: String,
    pub(crate) minpc: u64,
    pub(crate) maxpc: u64,
    pub(crate) text: u64,
    pub(crate) etext: u64,
    pub(crate) noptrdata: u64,
    pub(crate) enoptrdata: u64,
    pub(crate) data: u64,
    pub(crate) edata: u64,
    pub(crate) bss: u64,
    pub(crate) ebss: u64,
    pub(crate) noptrbss: u64,
    pub(crate) enoptrbss: u64,
    pub(crate) gofunc: u64,
}

impl ModuleData {
    /// `true` if `addr` lies in the module's data or bss (where runtime
    /// globals such as `allgs` live).
    pub(crate) fn is_global_data(&self, addr: u64) -> bool {
        (self.noptrdata..self.enoptrdata).contains(&addr)
            || (self.data..self.edata).contains(&addr)
            || (self.bss..self.ebss).contains(&addr)
            || (self.noptrbss..self.enoptrbss).contains(&addr)
    }
}

/// Offset of `moduledata.gofunc` for a Go minor version (from the DWARF of
/// each release: 1.18–1.19, 1.20–1.26, 1.27).
pub(crate) fn gofunc_offset(minor: u32) -> u64 {
    match minor {
        0..=19 => 0x130,
        20..=26 => 0x140,
        _ => 0x158,
    }
}

/// Finds `firstmoduledata`: the `.go.module` section (Go 1.26+), else the
/// one 8-byte-aligned word in a writable segment that points at the
/// pclntab and whose neighbours point at its funcname table and function
/// table.
pub(crate) fn find_moduledata(
    bin: &GoBinary,
    tab: &Pclntab<'_>,
    minor: u32,
) -> Result<ModuleData, ModuleDataError> {
    let pcl = tab.addr();
    let valid = |md: u64| -> bool {
        let w = |o: u64| bin.read_u64(md + o).ok();
        w(0) == Some(pcl)
            && w(8) == Some(pcl + tab.funcname_offset())
            && w(0x68) == Some(pcl + tab.functab_offset())
    };
    let mut candidates = Vec::new();
    if let Some(s) = bin.section(".go.module") {
        if valid(s.addr) {
            candidates.push((s.addr, "section .go.module".to_string()));
        }
    }
    if candidates.is_empty() {
        let needle = pcl.to_le_bytes();
        for seg in bin.segments().iter().filter(|s| s.writable) {
            let Some(data) = bin.slice_at_vaddr(seg.vaddr, seg.filesz as usize) else {
                continue;
            };
            let mut i = 0usize;
            while i + 8 <= data.len() {
                if data[i..i + 8] == needle && valid(seg.vaddr + i as u64) {
                    candidates.push((
                        seg.vaddr + i as u64,
                        "scan of writable segments for a pointer to the pclntab".to_string(),
                    ));
                }
                i += 8;
            }
        }
    }
    match candidates.len() {
        0 => {
            return Err(ModuleDataError::NotFound(
                "no word points at the pclntab with matching tables".into(),
            ))
        }
        1 => {}
        n => {
            return Err(ModuleDataError::NotFound(format!(
                "{n} candidates, refusing to guess"
            )))
        }
    }
    let (addr, how) = candidates.remove(0);
    let w = |o: u64| {
        bin.read_u64(addr + o)
            .map_err(|e| ModuleDataError::NotFound(e.to_string()))
    };
    Ok(ModuleData {
        addr,
        how,
        minpc: w(0xa0)?,
        maxpc: w(0xa8)?,
        text: w(0xb0)?,
        etext: w(0xb8)?,
        noptrdata: w(0xc0)?,
        enoptrdata: w(0xc8)?,
        data: w(0xd0)?,
        edata: w(0xd8)?,
        bss: w(0xe0)?,
        ebss: w(0xe8)?,
        noptrbss: w(0xf0)?,
        enoptrbss: w(0xf8)?,
        gofunc: w(gofunc_offset(minor))?,
    })
}
