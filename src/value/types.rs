//! A Go type as the value decoder needs it: its kind, size and parts, by
//! reference to other types (so recursive types cost nothing to describe).

/// A type's DWARF entry: its offset in `.debug_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u64);

/// One Go type.
#[derive(Debug, Clone)]
pub struct GoType {
    /// The DWARF name: Go's, with full package paths (`*net/http.Client`,
    /// `main.Pair[string,int]`).
    pub name: String,
    /// `unsafe.Sizeof`.
    pub size: u64,
    /// What it is.
    pub kind: TypeKind,
    /// The runtime type descriptor's offset from `moduledata.types` (0:
    /// none; the type never reaches an interface or reflection).
    pub rtype: u64,
}

/// The kinds the decoder distinguishes.
#[derive(Debug, Clone)]
pub enum TypeKind {
    /// `bool`.
    Bool,
    /// Signed integers of `size` bytes.
    Int,
    /// Unsigned integers (`uintptr` included) of `size` bytes.
    Uint,
    /// `float32`/`float64`.
    Float,
    /// `complex64`/`complex128`.
    Complex,
    /// `string`: `{ptr, len}`.
    String,
    /// `[len]elem`.
    Array {
        /// Element type.
        elem: TypeId,
        /// Element count.
        len: u64,
    },
    /// `[]elem`: `{ptr, len, cap}`.
    Slice {
        /// Element type.
        elem: TypeId,
    },
    /// A struct, named or not.
    Struct {
        /// In declaration order.
        fields: Vec<Field>,
    },
    /// `*elem`.
    Pointer {
        /// What it points at.
        elem: TypeId,
    },
    /// `unsafe.Pointer`.
    UnsafePointer,
    /// `map[key]elem`: a pointer to the runtime's header.
    Map {
        /// Key type.
        key: TypeId,
        /// Value type.
        elem: TypeId,
        /// The header struct the linker describes for this map type
        /// (`hash<K,V>` up to Go 1.23, `map<K,V>` from 1.24).
        header: Option<TypeId>,
    },
    /// `chan elem`: a pointer to `runtime.hchan`.
    Chan {
        /// Element type.
        elem: TypeId,
        /// The `hchan` struct.
        header: Option<TypeId>,
    },
    /// A func value: a pointer to a closure whose first word is the PC.
    Func,
    /// An interface: `{itab or _type, data}`.
    Interface {
        /// `interface{}`/`any` (eface: the first word is the type).
        empty: bool,
    },
    /// Something Go does not emit for a variable; said as such.
    Unsupported(String),
}

/// One struct member.
#[derive(Debug, Clone)]
pub struct Field {
    /// As declared (an embedded field is named by its type).
    pub name: String,
    /// Byte offset in the struct.
    pub offset: u64,
    /// Its type.
    pub ty: TypeId,
    /// An embedded field (`DW_AT_go_embedded_field`).
    pub embedded: bool,
}

impl TypeKind {
    /// The kind's name in the typed JSON tree (reflect's names).
    pub fn label(&self) -> &'static str {
        match self {
            TypeKind::Bool => "bool",
            TypeKind::Int => "int",
            TypeKind::Uint => "uint",
            TypeKind::Float => "float",
            TypeKind::Complex => "complex",
            TypeKind::String => "string",
            TypeKind::Array { .. } => "array",
            TypeKind::Slice { .. } => "slice",
            TypeKind::Struct { .. } => "struct",
            TypeKind::Pointer { .. } => "ptr",
            TypeKind::UnsafePointer => "unsafe.Pointer",
            TypeKind::Map { .. } => "map",
            TypeKind::Chan { .. } => "chan",
            TypeKind::Func => "func",
            TypeKind::Interface { .. } => "interface",
            TypeKind::Unsupported(_) => "unsupported",
        }
    }
}

/// A DWARF type name as Go's `reflect.Type.String` (and so `%#v`) writes
/// it: package paths cut to the package name (`*net/http.Client` →
/// `*http.Client`), except inside a generic instance's brackets, where
/// reflect keeps the full path. `pkg_name` maps a path to its package name
/// when the DWARF says (else the last path element is used).
pub fn go_name(dwarf_name: &str, pkg_name: &dyn Fn(&str) -> Option<String>) -> String {
    let name = dwarf_name.strip_prefix("noalg.").unwrap_or(dwarf_name);
    let b = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    let mut brackets = 0usize;
    while i < b.len() {
        let c = b[i];
        if c == b'[' {
            // `[N]T` and `[]T` are arrays/slices, `Name[...]` a generic
            // instance (its brackets follow an identifier).
            let after_map = out.ends_with("map")
                && (out.len() == 3 || !is_ident(out.as_bytes()[out.len() - 4]));
            // A generic's brackets, or brackets nested inside one.
            if (i > 0 && is_ident(b[i - 1]) && !after_map) || brackets > 0 {
                brackets += 1;
            }
            out.push('[');
            i += 1;
            continue;
        }
        if c == b']' {
            brackets = brackets.saturating_sub(1);
            out.push(']');
            i += 1;
            continue;
        }
        if brackets == 0 && (is_ident(c) || c == b'/') {
            // One qualified identifier: path/pkg.Name
            let start = i;
            while i < b.len() && (is_ident(b[i]) || matches!(b[i], b'/' | b'.' | b'-' | b'~')) {
                i += 1;
            }
            let word = &name[start..i];
            out.push_str(&shorten(word, pkg_name));
            continue;
        }
        out.push(c as char);
        i += 1;
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// `example.com/x/y.T` → `y.T` (or the package's declared name).
fn shorten(word: &str, pkg_name: &dyn Fn(&str) -> Option<String>) -> String {
    let Some(slash) = word.rfind('/') else {
        return word.to_string();
    };
    let Some(dot) = word[slash..].find('.').map(|d| slash + d) else {
        return word.to_string();
    };
    // A path element may hold dots (`gopkg.in/yaml.v3.Node`): the type name
    // is after the last dot, the path before it.
    let last_dot = word.rfind('.').unwrap_or(dot);
    let (path, rest) = (&word[..last_dot], &word[last_dot..]);
    let short = pkg_name(path).unwrap_or_else(|| path[slash + 1..].to_string());
    format!("{short}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        go_name(s, &|_| None)
    }

    #[test]
    fn names_as_reflect_writes_them() {
        assert_eq!(n("main.Config"), "main.Config");
        assert_eq!(n("*net/http.Client"), "*http.Client");
        assert_eq!(n("map[string]*net/url.URL"), "map[string]*url.URL");
        assert_eq!(n("[]int"), "[]int");
        assert_eq!(n("[3]main.T"), "[3]main.T");
        assert_eq!(n("main.Pair[string,int]"), "main.Pair[string,int]");
        assert_eq!(n("main.Box[a.b/c.T]"), "main.Box[a.b/c.T]");
        assert_eq!(n("a.b/c.Box[a.b/c.T]"), "c.Box[a.b/c.T]");
        assert_eq!(
            n("struct { A int; B string }"),
            "struct { A int; B string }"
        );
        assert_eq!(n("func(string) string"), "func(string) string");
        assert_eq!(n("chan *main.Node"), "chan *main.Node");
        assert_eq!(n("noalg.map.group[string]int"), "map.group[string]int");
        let yaml = go_name("*gopkg.in/yaml.v3.Node", &|p| {
            (p == "gopkg.in/yaml.v3").then(|| "yaml".to_string())
        });
        assert_eq!(yaml, "*yaml.Node");
    }
}
