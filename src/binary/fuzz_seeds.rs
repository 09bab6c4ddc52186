//! The fuzz corpus's synthetic seeds are built by unit tests from the same
//! table builders the tests use, so a seed can never drift from the format
//! it exercises: each test compares the checked-in seed with what it builds
//! and fails when they differ; `GOPEEK_WRITE_SEEDS=1` rewrites them instead.

use std::path::Path;

/// Checks (or, with `GOPEEK_WRITE_SEEDS=1`, writes) the seed
/// `fuzz/corpus/TARGET/NAME`.
pub(crate) fn check_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let path = dir.join(name);
    if std::env::var_os("GOPEEK_WRITE_SEEDS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).expect("create the corpus folder");
        std::fs::write(&path, bytes).expect("write the seed");
        return;
    }
    let have = std::fs::read(&path).unwrap_or_default();
    assert!(
        have == bytes,
        "the fuzz seed {} is missing or stale ({} bytes checked in, {} built); \
         rewrite it with GOPEEK_WRITE_SEEDS=1 cargo test --lib fuzz_seed",
        path.display(),
        have.len(),
        bytes.len()
    );
}
