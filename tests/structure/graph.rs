//! The module graph of one crate root: file → file edges from the references of
//! [`CrateTree`], minus edges to a module's own ancestors, and its strongly connected
//! components (Tarjan).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::modules::CrateTree;

/// One edge and where it is written (first line) and how often.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub line: usize,
    pub count: usize,
    pub example: String,
}

/// file index → (file index → evidence).
pub type Edges = BTreeMap<usize, BTreeMap<usize, Evidence>>;

/// The edges that the rule counts: between different files, not towards an ancestor.
pub fn edges(tree: &CrateTree) -> Edges {
    let mut out: Edges = BTreeMap::new();
    for r in &tree.references {
        let Some(to) = tree.resolve(&r.target) else {
            continue;
        };
        if to == r.from {
            continue;
        }
        let (from_mod, to_mod) = (&tree.files[r.from].module, &tree.files[to].module);
        if from_mod.starts_with(to_mod) {
            continue; // an ancestor: the parent files hold shared types and declare the child
        }
        let e = out
            .entry(r.from)
            .or_default()
            .entry(to)
            .or_insert_with(|| Evidence {
                line: r.line,
                count: 0,
                example: format!("crate::{}", r.target.join("::")),
            });
        e.count += 1;
    }
    out
}

/// Strongly connected components with more than one file, each sorted, in a stable order.
pub fn cycles(nodes: usize, edges: &Edges) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        edges: &'a Edges,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            let targets: Vec<usize> = self
                .edges
                .get(&v)
                .map(|m| m.keys().copied().collect())
                .unwrap_or_default();
            for w in targets {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(i) if self.on_stack[w] => self.low[v] = self.low[v].min(i),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut scc = Vec::new();
                loop {
                    let w = self.stack.pop().expect("v is on the stack");
                    self.on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort_unstable();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: vec![None; nodes],
        low: vec![0; nodes],
        on_stack: vec![false; nodes],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..nodes {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}

/// A readable account of one cycle: its files and the edges between them.
pub fn describe(tree: &CrateTree, edges: &Edges, scc: &[usize]) -> String {
    let mut s = String::new();
    let name = |i: usize| {
        let m = &tree.files[i].module;
        let module = if m.is_empty() {
            "crate".to_string()
        } else {
            m.join("::")
        };
        format!("{} ({module})", tree.files[i].file.display())
    };
    let _ = writeln!(s, "  cycle among {} files:", scc.len());
    for &f in scc {
        let _ = writeln!(s, "    {}", name(f));
    }
    let _ = writeln!(s, "   edges:");
    for &f in scc {
        for (&to, e) in edges.get(&f).into_iter().flatten() {
            if scc.contains(&to) {
                let _ = writeln!(
                    s,
                    "    {}:{} -> {} (e.g. {}, {} reference(s))",
                    tree.files[f].file.display(),
                    e.line,
                    tree.files[to].file.display(),
                    e.example,
                    e.count
                );
            }
        }
    }
    s
}
