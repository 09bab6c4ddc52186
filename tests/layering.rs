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
    parse_layer_line(line).unwrap_or_else(|e| panic!("ARCHITECTURE.md, {LAYERS_PREFIX:?} line: {e}"))
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
// The parser: comments and literals out, then the paths.

/// `src` with every comment (line, block, nested, doc) and every string,
/// byte-string, raw-string and char literal replaced by spaces; newlines are
/// kept, so line numbers stay right. Lifetimes and labels stay.
fn strip_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        // Line comment (`//`, `///`, `//!`).
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
            continue;
        }
        // Block comment, nested.
        if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    blank(&mut out, c[i]);
                    blank(&mut out, c[i + 1]);
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    blank(&mut out, c[i]);
                    blank(&mut out, c[i + 1]);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            continue;
        }
        // Raw strings: r"..", r#".."#, br"..", cr#".."#.
        let prev_ident = i > 0 && ident(c[i - 1]);
        let raw_start = if ch == 'r' && !prev_ident {
            Some(i + 1)
        } else if (ch == 'b' || ch == 'c') && next == Some('r') && !prev_ident {
            Some(i + 2)
        } else {
            None
        };
        if let Some(mut j) = raw_start {
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) == Some(&'"') {
                // Keep the prefix, blank the rest up to the closing quote
                // and its hashes.
                for &k in &c[i..j] {
                    out.push(k);
                }
                blank(&mut out, c[j]);
                j += 1;
                loop {
                    if j >= c.len() {
                        break;
                    }
                    if c[j] == '"' && (1..=hashes).all(|h| c.get(j + h) == Some(&'#')) {
                        for _ in 0..=hashes {
                            out.push(' ');
                        }
                        j += hashes + 1;
                        break;
                    }
                    blank(&mut out, c[j]);
                    j += 1;
                }
                i = j;
                continue;
            }
        }
        // Plain (and byte, C) strings.
        if ch == '"' {
            blank(&mut out, ch);
            i += 1;
            while i < c.len() {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    if let Some(&e) = c.get(i + 1) {
                        blank(&mut out, e);
                    }
                    i += 2;
                    continue;
                }
                let end = c[i] == '"';
                blank(&mut out, c[i]);
                i += 1;
                if end {
                    break;
                }
            }
            continue;
        }
        // Char literals ('x', '\n', '\u{1F600}', b'x'); a lifetime or label
        // ('a, 'static) has no closing quote right after its first char.
        if ch == '\'' {
            if next == Some('\\') {
                // Past the escaped char, so that '\'' ends at the right quote.
                let mut j = i + 3;
                while j < c.len() && c[j] != '\'' && c[j] != '\n' {
                    j += 1;
                }
                if c.get(j) == Some(&'\'') {
                    for &k in &c[i..=j] {
                        blank(&mut out, k);
                    }
                    i = j + 1;
                    continue;
                }
            } else if next.is_some() && c.get(i + 2) == Some(&'\'') {
                for &k in &c[i..i + 3] {
                    blank(&mut out, k);
                }
                i += 3;
                continue;
            }
        }
        out.push(ch);
        i += 1;
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

/// Tokens of stripped source, each with its 1-based line. `$crate` is
/// the ident `crate`.
fn tokens(stripped: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = stripped.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric() || ch == '_' || (ch == '$' && c.get(i + 1).is_some_and(|n| n.is_alphabetic())) {
            let start = if ch == '$' { i + 1 } else { i };
            let mut j = start;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            let mut word: String = c[start..j].iter().collect();
            // Raw identifiers: r#crate is the ident crate.
            if word == "r" && c.get(j) == Some(&'#') {
                let mut k = j + 1;
                while k < c.len() && (c[k].is_alphanumeric() || c[k] == '_') {
                    k += 1;
                }
                word = c[j + 1..k].iter().collect();
                j = k;
            }
            out.push((Tok::Ident(word), line));
            i = j;
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((
                match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// One path into the crate: `crate::walk::x` gives `("walk", line)`.
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    /// The first segment after `crate::`/`gopeek::` (`*` for a glob).
    target: String,
    line: usize,
    /// `crate`, `gopeek`.
    via: String,
}

/// Every path into the crate in `src`: `crate::X`, `$crate::X`,
/// `gopeek::X`, and each item of `crate::{X::.., Y}` groups, nested or
/// over several lines. Comments and literals are ignored.
fn crate_references(src: &str) -> Vec<Reference> {
    let toks = tokens(&strip_comments_and_literals(src));
    let mut out = Vec::new();
    for i in 0..toks.len() {
        let Tok::Ident(root) = &toks[i].0 else { continue };
        if root != "crate" && root != "gopeek" {
            continue;
        }
        // A path start only: not `foo::gopeek::x`.
        if i > 0 && toks[i - 1].0 == Tok::PathSep {
            continue;
        }
        if toks.get(i + 1).map(|t| &t.0) != Some(&Tok::PathSep) {
            continue;
        }
        let via = root.clone();
        match toks.get(i + 2) {
            Some((Tok::Ident(x), line)) => out.push(Reference {
                target: x.clone(),
                line: *line,
                via,
            }),
            Some((Tok::Open, _)) => group_items(&toks, i + 2, &via, &mut out),
            Some((Tok::Other, line)) => out.push(Reference {
                target: "*".into(),
                line: *line,
                via,
            }),
            _ => {}
        }
    }
    out
}

/// The first segment of every item of the group opening at `toks[open]`.
fn group_items(toks: &[(Tok, usize)], open: usize, via: &str, out: &mut Vec<Reference>) {
    let mut depth = 0;
    let mut at_item_start = false;
    for (t, line) in &toks[open..] {
        match t {
            Tok::Open => {
                depth += 1;
                if depth == 1 {
                    at_item_start = true;
                }
            }
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            Tok::Comma if depth == 1 => at_item_start = true,
            Tok::Ident(x) if depth == 1 && at_item_start => {
                at_item_start = false;
                // `crate::{self, ..}` names the crate root itself.
                if x != "self" {
                    out.push(Reference {
                        target: x.clone(),
                        line: *line,
                        via: via.to_string(),
                    });
                }
            }
            Tok::Other if depth == 1 && at_item_start => {
                at_item_start = false;
                out.push(Reference {
                    target: "*".into(),
                    line: *line,
                    via: via.to_string(),
                });
            }
            _ => {}
        }
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
        let r = f.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
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
}

#[test]
fn no_layer_uses_a_layer_above_it() {
    let layers = layer_order();
    let (edges, unknown) = edges();
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
    assert!(bad.is_empty(), "layers that use each other:\n  {}", bad.join("\n  "));
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

mod parser {
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
        assert_eq!(targets(src), t(&[("walk", 2), ("snapshot", 3), ("dump", 7)]));
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
