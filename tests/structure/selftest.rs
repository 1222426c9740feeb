//! The checker itself, on small crates written to a temporary directory: it must find a
//! cycle closed through each kind of reference, and must not count ancestors or tests.

use std::path::{Path, PathBuf};

use crate::{cycle_report, long_files};

fn write_crate(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<(String, PathBuf)>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let krate = dir.path().join("k");
    for (path, text) in files {
        let p = krate.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    (dir, vec![("k".to_string(), krate)])
}

fn cycles_of(files: &[(&str, &str)]) -> String {
    let (dir, crates) = write_crate(files);
    let (failing, _, _) = cycle_report(dir.path(), &crates, &[]);
    failing
}

const LIB: &str = "mod a;\nmod b;\nmod c;\npub mod shared;\npub struct Root;\n";
const A: &str = "use crate::{b::B, shared::S};\npub struct A;\n";
const B: &str = "use super::c;\npub struct B;\nfn f() { let _ = c::C; }\n";
const SHARED: &str = "mod inner;\npub use inner::I;\npub struct S;\n";
const INNER: &str = "use crate::shared::S;\nuse super::super::Root;\npub struct I;\n";

fn with_c(c: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("src/lib.rs", LIB),
        ("src/a.rs", A),
        ("src/b.rs", B),
        ("src/c.rs", c),
        ("src/shared/mod.rs", SHARED),
        ("src/shared/inner.rs", INNER),
    ]
}

#[test]
fn finds_a_cycle_closed_by_each_kind_of_reference() {
    let closers = [
        ("use", "use crate::a::A;\npub struct C;\n"),
        (
            "grouped use",
            "use crate::{shared::S, a::{self}};\npub struct C;\n",
        ),
        (
            "expression path",
            "pub struct C;\nfn f() { let _ = crate::a::A; }\n",
        ),
        ("type path", "pub struct C(pub crate::a::A);\n"),
        (
            "macro",
            "pub struct C;\nfn f() { let _ = format!(\"{:?}\", crate::a::A); }\n",
        ),
        (
            "super",
            "pub struct C;\nfn f() -> super::a::A { todo!() }\n",
        ),
        (
            "inline module",
            "mod m { use crate::a::A; }\npub struct C;\n",
        ),
    ];
    for (kind, c) in closers {
        let report = cycles_of(&with_c(c));
        assert!(report.contains("cycle among 3 files"), "{kind}: {report}");
        for f in ["src/a.rs", "src/b.rs", "src/c.rs"] {
            assert!(report.contains(f), "{kind}: {f} missing in {report}");
        }
        assert!(
            !report.contains("shared"),
            "{kind}: ancestors counted: {report}"
        );
    }
}

#[test]
fn ancestors_and_tests_close_no_cycle() {
    let cases = [
        ("no back edge", "pub struct C;\n"),
        (
            "cfg(test) module",
            "pub struct C;\n#[cfg(test)]\nmod tests { use crate::a::A; }\n",
        ),
        (
            "cfg(test) item",
            "pub struct C;\n#[cfg(test)]\nfn t() { let _ = crate::a::A; }\n",
        ),
        ("ancestor", "use crate::Root;\npub struct C;\n"),
        (
            "external path",
            "pub struct C;\nfn f() { let _ = ::a::A; }\n",
        ),
    ];
    for (kind, c) in cases {
        assert_eq!(cycles_of(&with_c(c)), "", "{kind}");
    }
    // A test module in its own file is not read at all.
    let mut files = with_c("pub struct C;\n#[cfg(test)]\nmod tests;\n");
    files.push(("src/c/tests.rs", "use crate::a::A;\n"));
    assert_eq!(cycles_of(&files), "");
}

#[test]
fn mod_rs_and_path_attributes_are_followed() {
    let files = [
        (
            "src/lib.rs",
            "mod x;\n#[path = \"elsewhere/y_impl.rs\"]\nmod y;\n",
        ),
        ("src/x/mod.rs", "mod z;\npub struct X;\n"),
        ("src/x/z.rs", "pub struct Z(crate::y::Y);\n"),
        (
            "src/elsewhere/y_impl.rs",
            "pub struct Y;\nfn f() { let _ = crate::x::X; }\n",
        ),
    ];
    let report = cycles_of(&files);
    // x → (nothing), z → y, y → x: no cycle, because z → x is never claimed.
    assert_eq!(report, "");
    let mut files = files.to_vec();
    files[1] = ("src/x/mod.rs", "mod z;\npub use z::Z;\npub struct X;\n");
    let report = cycles_of(&files);
    assert!(
        report.contains("src/x/z.rs") && report.contains("src/elsewhere/y_impl.rs"),
        "{report}"
    );
}

#[test]
fn long_files_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let line = "// x\n";
    std::fs::create_dir_all(dir.path().join("a/target")).unwrap();
    std::fs::write(dir.path().join("a/ok.rs"), line.repeat(800)).unwrap();
    std::fs::write(dir.path().join("a/long.rs"), line.repeat(801)).unwrap();
    std::fs::write(dir.path().join("a/target/gen.rs"), line.repeat(900)).unwrap();
    let mut out = Vec::new();
    long_files(dir.path(), dir.path(), 800, &mut out);
    assert_eq!(out, vec![(Path::new("a/long.rs").to_path_buf(), 801)]);
}
