//! The invariant of ARCHITECTURE.md's "Invariants": inside every crate of the
//! workspace, the modules that share a parent (the top-level modules of a crate, the
//! submodules of one module) depend on each other without a cycle. A module may use its
//! own ancestors (`super::…`) and its parent declares it; neither counts as a cycle.
//!
//! A dependency is any path `crate::a::b…`, `super::…` or `self::…` in a file, `use`
//! groups (`use crate::{a::X, b::{Y, Z}}`) included, test modules included. The path is
//! resolved to the longest module it names (modules are the files under `src/`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside one crate: `[]` is the crate root, `["verification", "policy"]`…
type ModPath = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module a file under `src/` defines (`lib.rs`/`main.rs` → root, `a/mod.rs` → a).
fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs").to_string();
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return Vec::new();
    }
    // `src/bin/x.rs` and the like are separate crates: give them their own root.
    if stem != "mod" {
        parts.push(stem);
    }
    parts
}

/// The source without comments and string literals (so doc text does not count).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) {
            // Raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"')
                || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            {
                out.push(b[i] as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"'
                    && b[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&c| c == b'#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): skip literals only.
            let close = b[i + 1..].iter().take(12).position(|&c| c == b'\'');
            match close {
                Some(n) if n == 1 || b.get(i + 1) == Some(&b'\\') => i += n + 2,
                _ => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Expands `a::{b::X, c::{Y, Z}}` into `a::b::X`, `a::c::Y`, `a::c::Z`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or("").trim().to_string()];
    };
    let prefix = &tree[..open];
    let inner = tree[open + 1..].trim_end().trim_end_matches('}');
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(&format!("{prefix}{}", p.trim())))
        .collect()
}

/// Every path in `code` that starts with `crate::`, `super::` or `self::`.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `use` statements, groups expanded.
    let b = code.as_bytes();
    let mut from = 0;
    while let Some(pos) = code[from..].find("use ") {
        let at = from + pos;
        from = at + 4;
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') {
            continue;
        }
        if let Some(end) = code[at..].find(';') {
            out.extend(expand(&code[at + 4..at + end]));
        }
    }
    // Paths written in place.
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(pos) = code[from..].find(start) {
            let at = from + pos;
            from = at + start.len();
            if at > 0
                && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_' || b[at - 1] == b':')
            {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| at + e);
            out.push(code[at..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// The module `path` (as written in module `from`) names, resolved against `modules`.
fn resolve(from: &ModPath, path: &str, modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (mut base, rest): (ModPath, &[&str]) = match *segs.first()? {
        "crate" => (Vec::new(), &segs[1..]),
        "self" => (from.clone(), &segs[1..]),
        "super" => {
            let mut b = from.clone();
            let mut k = 0;
            while segs.get(k) == Some(&"super") {
                b.pop();
                k += 1;
            }
            (b, &segs[k..])
        }
        _ => return None,
    };
    for s in rest {
        let mut next = base.clone();
        next.push((*s).to_string());
        if modules.contains(&next) {
            base = next;
        } else {
            break;
        }
    }
    Some(base)
}

/// Edges between siblings: for a dependency of module `m` on module `r`, the children of
/// their deepest common ancestor that hold them (none if one holds the other).
fn sibling_edge(m: &ModPath, r: &ModPath) -> Option<(ModPath, ModPath)> {
    let common = m.iter().zip(r).take_while(|(a, b)| a == b).count();
    if common == m.len() || common == r.len() {
        return None;
    }
    Some((m[..=common].to_vec(), r[..=common].to_vec()))
}

/// A cycle in the directed graph, if any, as a list of modules.
fn find_cycle(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<ModPath>> {
    fn visit(
        n: &ModPath,
        edges: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        state: &mut BTreeMap<ModPath, u8>,
        stack: &mut Vec<ModPath>,
    ) -> Option<Vec<ModPath>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for next in edges.get(n).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The sibling dependency graph of one crate's `src/` folder: (file, module, source).
fn graph(files: &[(ModPath, String)]) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let modules: BTreeSet<ModPath> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (m, src) in files {
        for p in paths(&code_only(src)) {
            let Some(r) = resolve(m, &p, &modules) else {
                continue;
            };
            if let Some((a, b)) = sibling_edge(m, &r) {
                edges.entry(a).or_default().insert(b);
            }
        }
    }
    edges
}

fn show(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn no_crate_has_a_module_cycle() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    let mut problems = Vec::new();
    for e in std::fs::read_dir(&crates).expect("crates folder").flatten() {
        let src = e.path().join("src");
        if !src.is_dir() {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let parsed: Vec<(ModPath, String)> = files
            .iter()
            .filter(|f| !f.starts_with(src.join("bin")))
            .map(|f| {
                (
                    module_of(&src, f),
                    std::fs::read_to_string(f).expect("read"),
                )
            })
            .collect();
        checked += parsed.len();
        if let Some(c) = find_cycle(&graph(&parsed)) {
            problems.push(format!(
                "{}: {}",
                e.file_name().to_string_lossy(),
                c.iter().map(show).collect::<Vec<_>>().join(" → ")
            ));
        }
    }
    assert!(
        checked > 50,
        "found only {checked} source files under {crates:?}"
    );
    assert!(
        problems.is_empty(),
        "module cycles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_cycle_between_siblings_is_found_and_a_use_of_the_parent_is_not() {
    let f = |m: &[&str], src: &str| {
        (
            m.iter().map(|s| s.to_string()).collect::<ModPath>(),
            src.to_string(),
        )
    };
    let ok = vec![
        f(&[], "mod a; mod b;"),
        f(
            &["a"],
            "use crate::b::Thing; // crate::b::x and crate::a in a comment\n",
        ),
        f(&["a", "inner"], "use super::*; use crate::{a::X, b};"),
        f(&["b"], "fn f() { let s = \"crate::a::X\"; }"),
    ];
    assert!(find_cycle(&graph(&ok)).is_none());
    let mut bad = ok.clone();
    bad.push(f(&["b", "deep"], "use crate::{x::y, a::{inner::Z, W}};"));
    let cycle = find_cycle(&graph(&bad)).expect("the b → a edge closes a cycle");
    assert_eq!(cycle.len(), 3, "{cycle:?}");
}
