//! Tidy checks of the source tree, in the spirit of rust-analyzer's tidy
//! tests: the module layering that ARCHITECTURE.md declares, and the size of
//! source files.
//!
//! The layer order, lowest first, is the line of ARCHITECTURE.md starting
//! with `Layers, lowest first:`. Every `.rs` file under `src/` belongs to the
//! layer named by its first path component (`src/walk/capture/mod.rs` is
//! `walk`, `src/dump.rs` is `dump`; `src/main.rs` and `src/cli/` are `cli`,
//! `src/lib.rs` is the crate root and belongs to none). A file may refer
//! (`crate::X`, `$crate::X`, `gopeek::X`, in `use` items, `use` groups over
//! several lines, and paths inside code) to its own layer and to the layers
//! listed before it, never to one listed after it. Comments, doc comments
//! and string literals are not code and are ignored.
//!
//! Each check collects every offender and fails once, with all of them.

#[path = "layering/parser.rs"]
mod parser;

use parser::crate_references;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Source files over this many lines are too long to read in one go.
const MAX_LINES: usize = 600;
/// Generated: exempt from [`MAX_LINES`].
const GENERATED: &[&str] = &["src/layout/tables.rs"];
const LAYERS_PREFIX: &str = "Layers, lowest first:";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The layers in ARCHITECTURE.md, lowest first.
fn layer_order() -> Vec<String> {
    let path = repo().join("ARCHITECTURE.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(LAYERS_PREFIX))
        .unwrap_or_else(|| {
            panic!(
                "ARCHITECTURE.md has no line starting with {LAYERS_PREFIX:?} \
                 (e.g. `{LAYERS_PREFIX} memory, binary, ..., cli`)"
            )
        });
    parse_layer_line(line)
        .unwrap_or_else(|e| panic!("ARCHITECTURE.md, {LAYERS_PREFIX:?} line: {e}"))
}

/// `memory, binary, layout.` -> `["memory", "binary", "layout"]`.
fn parse_layer_line(line: &str) -> Result<Vec<String>, String> {
    let mut layers: Vec<String> = Vec::new();
    for item in line.trim().trim_end_matches('.').split(',') {
        let name = item.trim().trim_matches('`');
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{item:?} is not a module name"));
        }
        if layers.iter().any(|l| l == name) {
            return Err(format!("{name} is listed twice"));
        }
        layers.push(name.to_string());
    }
    Ok(layers)
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The path relative to the repository root, with `/`.
fn rel(p: &Path) -> String {
    p.strip_prefix(repo())
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The top-level module of a path relative to `src/`: `walk/capture/mod.rs`
/// -> `walk`, `dump.rs` -> `dump`, `main.rs` and `cli/...` -> `cli`;
/// `None` for the crate root `lib.rs`.
fn top_module(rel_to_src: &str) -> Option<String> {
    let first = rel_to_src.split('/').next().unwrap_or(rel_to_src);
    let name = first.strip_suffix(".rs").unwrap_or(first);
    match name {
        "lib" if !rel_to_src.contains('/') => None,
        "main" if !rel_to_src.contains('/') => Some("cli".to_string()),
        _ => Some(name.to_string()),
    }
}

// ---------------------------------------------------------------------------
// The tree.

/// A reference from one layer to another, where it is.
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    file: String,
    line: usize,
    path: String,
}

/// Every reference of every file under src/, resolved to layers; and the
/// references that name no layer.
fn edges() -> (Vec<Edge>, Vec<String>) {
    let src = repo().join("src");
    let layers = layer_order();
    let mut edges = Vec::new();
    let mut unknown = Vec::new();
    for f in rust_files(&src) {
        let r = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let Some(from) = top_module(&r) else { continue };
        let text = std::fs::read_to_string(&f).unwrap();
        for refr in crate_references(&text) {
            // In the binary crate (main.rs, cli/), `crate::` is the binary
            // itself: only `gopeek::` leads into the library.
            let to = if from == "cli" && refr.via == "crate" {
                from.clone()
            } else {
                refr.target.clone()
            };
            let path = format!("{}::{}", refr.via, refr.target);
            if !layers.contains(&to) {
                unknown.push(format!(
                    "{}:{}: {path} names no layer (layers: {})",
                    rel(&f),
                    refr.line,
                    layers.join(", ")
                ));
                continue;
            }
            edges.push(Edge {
                from: from.clone(),
                to,
                file: rel(&f),
                line: refr.line,
                path,
            });
        }
    }
    (edges, unknown)
}

fn rank(layers: &[String], name: &str) -> usize {
    layers.iter().position(|l| l == name).unwrap()
}

#[test]
fn every_top_level_module_has_a_layer() {
    let layers = layer_order();
    let mut missing = Vec::new();
    for e in std::fs::read_dir(repo().join("src")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !p.is_dir() && !name.ends_with(".rs") {
            continue;
        }
        let Some(m) = top_module(&name) else { continue };
        if !layers.contains(&m) {
            missing.push(format!("src/{name} (module {m})"));
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "not in the layer order of ARCHITECTURE.md ({LAYERS_PREFIX} {}): place each in it:\n  {}",
        layers.join(", "),
        missing.join("\n  ")
    );
    // And the order names nothing that is gone.
    let src = repo().join("src");
    let stale: Vec<&String> = layers
        .iter()
        .filter(|l| {
            !(src.join(l.as_str()).is_dir()
                || src.join(format!("{l}.rs")).is_file()
                || (l.as_str() == "cli" && src.join("main.rs").is_file()))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "ARCHITECTURE.md's {LAYERS_PREFIX:?} names layers that src/ does not have: {stale:?}"
    );
}

#[test]
fn no_layer_uses_a_layer_above_it() {
    let layers = layer_order();
    let (edges, unknown) = edges();
    // A parser that finds nothing would pass vacuously.
    let across = edges.iter().filter(|e| e.from != e.to).count();
    assert!(
        across >= 20,
        "only {across} references between layers found in src/: is the parser broken?"
    );
    let mut bad: Vec<String> = edges
        .iter()
        .filter(|e| rank(&layers, &e.to) > rank(&layers, &e.from))
        .map(|e| {
            format!(
                "{}:{}: {} uses {} ({}), a layer above it",
                e.file, e.line, e.from, e.to, e.path
            )
        })
        .collect();
    // Two paths on one line make one finding.
    bad.dedup();
    bad.extend(unknown);
    assert!(
        bad.is_empty(),
        "{} reference(s) against the layering ({LAYERS_PREFIX} {}; a module may use itself \
         and the layers before it):\n  {}",
        bad.len(),
        layers.join(", "),
        bad.join("\n  ")
    );
}

#[test]
fn no_two_layers_use_each_other() {
    let (edges, _) = edges();
    let mut first: BTreeMap<(String, String), &Edge> = BTreeMap::new();
    for e in edges.iter().filter(|e| e.from != e.to) {
        first.entry((e.from.clone(), e.to.clone())).or_insert(e);
    }
    let mut bad = Vec::new();
    for ((a, b), e) in &first {
        if a < b {
            if let Some(back) = first.get(&(b.clone(), a.clone())) {
                bad.push(format!(
                    "{a} and {b} use each other: {}:{} ({a} -> {}) and {}:{} ({b} -> {})",
                    e.file, e.line, e.path, back.file, back.line, back.path
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "layers that use each other:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn no_source_file_over_600_lines() {
    let mut long = Vec::new();
    for f in rust_files(&repo().join("src")) {
        let r = rel(&f);
        if GENERATED.contains(&r.as_str()) {
            continue;
        }
        let n = std::fs::read_to_string(&f).unwrap().lines().count();
        if n > MAX_LINES {
            long.push((n, r));
        }
    }
    long.sort_by(|a, b| b.cmp(a));
    assert!(
        long.is_empty(),
        "{} source file(s) over {MAX_LINES} lines (split them; generated files are listed in \
         tests/layering.rs GENERATED):\n  {}",
        long.len(),
        long.iter()
            .map(|(n, r)| format!("{r}: {n} lines"))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// The parser's own tests.

mod parser_tests {
    use super::*;

    fn targets(src: &str) -> Vec<(String, usize)> {
        crate_references(src)
            .into_iter()
            .map(|r| (r.target, r.line))
            .collect()
    }

    fn t(v: &[(&str, usize)]) -> Vec<(String, usize)> {
        v.iter().map(|(s, l)| (s.to_string(), *l)).collect()
    }

    #[test]
    fn use_lines_and_inline_paths() {
        let src = "use crate::walk::capture;\n\
                   use gopeek::dump::DumpSnapshot;\n\
                   fn f() { let m = crate::process::LiveMemory::new(1); }\n\
                   fn g() -> gopeek::memory::Range { todo!() }\n";
        assert_eq!(
            targets(src),
            t(&[("walk", 1), ("dump", 2), ("process", 3), ("memory", 4)])
        );
    }

    #[test]
    fn multi_line_use_groups() {
        let src = "use crate::{\n    walk::{capture, unwind},\n    snapshot::{\n        x,\n        y,\n    },\n    dump,\n    self,\n};\n";
        assert_eq!(
            targets(src),
            t(&[("walk", 2), ("snapshot", 3), ("dump", 7)])
        );
        let src = "pub use gopeek::{analyze::group as g, output::*};";
        assert_eq!(targets(src), t(&[("analyze", 1), ("output", 1)]));
    }

    #[test]
    fn comments_and_doc_comments_are_ignored() {
        let src = "// crate::sudo in a comment\n\
                   /// [`crate::snapshot::x`] in a doc comment\n\
                   //! gopeek::cli here too\n\
                   /* block crate::walk /* nested crate::output */ still crate::analyze */\n\
                   /** doc block crate::gotrace */\n\
                   use crate::memory; // trailing crate::sudo\n";
        assert_eq!(targets(src), t(&[("memory", 6)]));
    }

    #[test]
    fn strings_and_chars_are_ignored() {
        let src = r####"let a = "crate::sudo";
let b = "escaped \" crate::walk \\";
let c = r#"raw "crate::output" "#;
let d = br##"raw bytes crate::analyze"##;
let e = b"crate::cli";
let q = '"'; let s = crate::dump::X;
let l: &'static str = "x"; fn f<'a>(x: &'a u8) -> &'a u8 { crate::memory::y(x) }
let esc = '\''; let u = '\u{22}'; crate::layout::z();
"####;
        assert_eq!(
            targets(src),
            t(&[("dump", 6), ("memory", 7), ("layout", 8)])
        );
    }

    #[test]
    fn only_path_starts_count() {
        let src = "pub(crate) fn f() {}\n\
                   let x = other::gopeek::walk::y;\n\
                   let y = gopeek_fuzz::walk::z;\n\
                   let z = my_crate::snapshot::w;\n\
                   macro_rules! m { () => { $crate::binary::x() } }\n";
        assert_eq!(targets(src), t(&[("binary", 5)]));
    }

    #[test]
    fn top_modules() {
        assert_eq!(top_module("walk/capture/mod.rs").as_deref(), Some("walk"));
        assert_eq!(top_module("dump.rs").as_deref(), Some("dump"));
        assert_eq!(top_module("main.rs").as_deref(), Some("cli"));
        assert_eq!(top_module("cli/analysis.rs").as_deref(), Some("cli"));
        assert_eq!(top_module("lib.rs"), None);
        assert_eq!(top_module("walk"), Some("walk".into()));
    }

    #[test]
    fn layer_line() {
        assert_eq!(
            parse_layer_line(" memory, `binary`, layout.").unwrap(),
            vec!["memory", "binary", "layout"]
        );
        assert!(parse_layer_line("memory, memory").is_err());
        assert!(parse_layer_line("memory, , cli").is_err());
    }
}
