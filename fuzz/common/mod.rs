//! What several fuzz targets share: the real Go binary that supplies
//! addresses, layouts or DWARF, and the split of an input into sections.
//! Included with `#[path]` by the targets that use it; each uses a part.
#![allow(dead_code)]

use gopeek::binary::elf::GoBinary;

/// The Go binary a target fuzzes against: GOPEEK_FUZZ_BINARY, else the
/// go1.27 default build of `fixture` (scripts/build-fixtures). Leaked: the
/// tables parsed from it borrow its mapping for the fuzzer's whole life.
pub fn fuzz_binary(fixture: &str) -> &'static GoBinary {
    let path = std::env::var("GOPEEK_FUZZ_BINARY").unwrap_or_else(|_| {
        format!(
            "{}/../target/fixtures/go1.27/default/{fixture}",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    Box::leak(Box::new(
        GoBinary::open(std::path::Path::new(&path)).unwrap_or_else(|e| {
            panic!("fuzz binary {path}: {e} (run scripts/build-fixtures {fixture})")
        }),
    ))
}

/// The next section of the input: two little-endian length bytes, then
/// that many bytes (fewer at the end); empty once the input runs out.
pub fn take_section<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    if data.len() < 2 {
        return &[];
    }
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (a, b) = data[2..].split_at(n);
    *data = b;
    a
}
