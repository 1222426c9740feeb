//! Reads one crate's module tree (from `src/lib.rs`, `src/main.rs` or `src/bin/*.rs`,
//! following `mod` declarations the way rustc does) and collects, for every source file, the
//! module paths it refers to inside its own crate: `use` trees (grouped, `super`, `self`,
//! child-relative), paths in types, expressions and patterns, and `crate::`/`super::` paths
//! inside macro invocations. Items under `#[cfg(test)]` (test modules, inline or in their own
//! file) are skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// One source file of a crate and the module it defines.
#[derive(Debug)]
pub struct ModFile {
    /// Path relative to the directory the crate was read from.
    pub file: PathBuf,
    /// Module path from the crate root (`[]` is the root).
    pub module: Vec<String>,
}

/// A reference from a file to a module path of the same crate.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Index into [`CrateTree::files`] of the file the reference is written in.
    pub from: usize,
    /// Absolute path from the crate root (module segments and maybe an item name).
    pub target: Vec<String>,
    pub line: usize,
}

/// The files of one crate root and the references they make.
#[derive(Debug, Default)]
pub struct CrateTree {
    pub files: Vec<ModFile>,
    /// Every module path (file modules and inline modules) → the file that defines it.
    pub modules: BTreeMap<Vec<String>, usize>,
    pub references: Vec<Reference>,
}

impl CrateTree {
    /// Reads the crate whose root file is `root_file`; paths are reported relative to `base`.
    pub fn read(base: &Path, root_file: &Path) -> Result<CrateTree, String> {
        let mut tree = CrateTree::default();
        let dir = root_file
            .parent()
            .expect("root file has a directory")
            .to_path_buf();
        tree.load_file(base, root_file, Vec::new(), dir)?;
        Ok(tree)
    }

    /// The file (index) a reference lands in: the longest prefix of `target` that names a module.
    pub fn resolve(&self, target: &[String]) -> Option<usize> {
        (0..=target.len())
            .rev()
            .find_map(|n| self.modules.get(&target[..n]).copied())
    }

    fn load_file(
        &mut self,
        base: &Path,
        file: &Path,
        module: Vec<String>,
        child_dir: PathBuf,
    ) -> Result<(), String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let ast = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let index = self.files.len();
        let rel = file.strip_prefix(base).unwrap_or(file).to_path_buf();
        self.files.push(ModFile {
            file: rel,
            module: module.clone(),
        });
        self.modules.insert(module.clone(), index);
        let file_dir = file.parent().expect("file has a directory").to_path_buf();
        self.load_items(base, &ast.items, index, &module, &child_dir, &file_dir)
    }

    /// Walks the items of one module (a file or an inline `mod x { … }`).
    fn load_items(
        &mut self,
        base: &Path,
        items: &[syn::Item],
        index: usize,
        module: &[String],
        child_dir: &Path,
        file_dir: &Path,
    ) -> Result<(), String> {
        // Child modules first, so that child-relative paths (`use store::X;`) resolve.
        let mut children = Vec::new();
        for item in items {
            let syn::Item::Mod(m) = item else { continue };
            if is_cfg_test(&m.attrs) {
                continue;
            }
            let mut path = module.to_vec();
            path.push(m.ident.to_string());
            self.modules.entry(path.clone()).or_insert(index);
            children.push((m, path));
        }
        for (m, path) in children {
            let name = m.ident.to_string();
            match &m.content {
                Some((_, inner)) => {
                    let dir = child_dir.join(&name);
                    self.load_items(base, inner, index, &path, &dir, file_dir)?;
                }
                None => {
                    let (file, dir) = match path_attr(&m.attrs) {
                        Some(p) => {
                            let f = file_dir.join(p);
                            let d = f.with_extension("");
                            (f, d)
                        }
                        None => {
                            let flat = child_dir.join(format!("{name}.rs"));
                            if flat.exists() {
                                (flat, child_dir.join(&name))
                            } else {
                                (child_dir.join(&name).join("mod.rs"), child_dir.join(&name))
                            }
                        }
                    };
                    self.load_file(base, &file, path, dir)?;
                }
            }
        }
        let mut collector = Collector {
            tree: self,
            from: index,
            module: module.to_vec(),
        };
        for item in items {
            if item_is_cfg_test(item) || matches!(item, syn::Item::Mod(_)) {
                continue;
            }
            collector.visit_item(item);
        }
        Ok(())
    }
}

/// `#[cfg(test)]` exactly (not `cfg(any(test, …))`, which builds outside tests too).
fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Ident>()
                .map(|i| i == "test")
                .unwrap_or(false)
    })
}

fn item_is_cfg_test(item: &syn::Item) -> bool {
    let attrs = match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => return false,
    };
    is_cfg_test(attrs)
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// Visits the items of one module and records the crate-internal paths they mention.
struct Collector<'a> {
    tree: &'a mut CrateTree,
    from: usize,
    /// The module the items are in (an inline module's own path, not its file's).
    module: Vec<String>,
}

impl Collector<'_> {
    /// Turns a written path into an absolute one, if it starts inside this crate.
    fn absolute(&self, segments: &[String], leading_colon: bool) -> Option<Vec<String>> {
        if leading_colon || segments.is_empty() {
            return None;
        }
        let mut base = self.module.clone();
        let mut rest = segments;
        match rest[0].as_str() {
            "crate" | "$crate" => {
                base.clear();
                rest = &rest[1..];
            }
            "self" => rest = &rest[1..],
            "super" => {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            first => {
                let mut child = self.module.clone();
                child.push(first.to_string());
                if !self.tree.modules.contains_key(&child) {
                    return None;
                }
            }
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn record(&mut self, segments: &[String], leading_colon: bool, line: usize) {
        if let Some(target) = self.absolute(segments, leading_colon) {
            self.tree.references.push(Reference {
                from: self.from,
                target,
                line,
            });
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, colon: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, colon);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, &n.ident, colon),
            syn::UseTree::Rename(r) => self.use_leaf(prefix, &r.ident, colon),
            syn::UseTree::Glob(g) => {
                let line = g.star_token.spans[0].start().line;
                self.record(prefix, colon, line);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t, colon);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &mut Vec<String>, ident: &syn::Ident, colon: bool) {
        let line = ident.span().start().line;
        if ident == "self" {
            self.record(prefix, colon, line);
        } else {
            prefix.push(ident.to_string());
            self.record(prefix, colon, line);
            prefix.pop();
        }
    }

    /// `crate::a::b`, `super::a`, `self::a` and `$crate::a` inside macro tokens.
    fn tokens(&mut self, tokens: TokenStream) {
        let flat: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < flat.len() {
            match &flat[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id) if id == "crate" || id == "super" || id == "self" => {
                    let dollar =
                        i > 0 && matches!(&flat[i - 1], TokenTree::Punct(p) if p.as_char() == '$');
                    let mut segs = vec![if dollar {
                        "$crate".to_string()
                    } else {
                        id.to_string()
                    }];
                    let mut j = i + 1;
                    while j + 2 < flat.len() {
                        let (TokenTree::Punct(a), TokenTree::Punct(b), TokenTree::Ident(n)) =
                            (&flat[j], &flat[j + 1], &flat[j + 2])
                        else {
                            break;
                        };
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segs.push(n.to_string());
                        j += 3;
                    }
                    if segs.len() > 1 {
                        self.record(&segs, false, id.span().start().line);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let colon = u.leading_colon.is_some();
        self.use_tree(&mut Vec::new(), &u.tree, colon);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        // A lone identifier is a local name far more often than a module.
        if segs.len() > 1 {
            let line = p.segments[0].ident.span().start().line;
            self.record(&segs, p.leading_colon.is_some(), line);
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.visit_path(&m.path);
        self.tokens(m.tokens.clone());
    }

    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {
        // Modules nested in function bodies are not part of the graph.
    }
}
