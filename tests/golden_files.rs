//! `file dump` and `file info` of every golden counter file equal the reference's output
//! byte for byte (docs/file-format.md, "File tools").

use std::fs;
use std::path::{Path, PathBuf};

use istatd_storage::tools;

const CASES: &[&str] = &[
    "basic",
    "events/files0",
    "events/files1",
    "events/files2",
    "retention",
];

fn golden_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .join("shared/golden");
    root.is_dir().then_some(root)
}

/// The folder of a case holding its `.bin` files (`CASE/files`, or `CASE` itself).
fn files_dir(root: &Path, case: &str) -> PathBuf {
    let d = root.join(case);
    if d.join("files").is_dir() {
        d.join("files")
    } else {
        d
    }
}

fn bins(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    v.sort();
    v
}

fn text(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn dump_and_info_match_the_reference() {
    let Some(root) = golden_root() else {
        eprintln!("SKIP: ../shared/golden not found next to the repository; golden tests not run");
        return;
    };
    let mut checked = 0;
    for case in CASES {
        let dir = files_dir(&root, case);
        let files = bins(&dir);
        assert!(!files.is_empty(), "no .bin files in {}", dir.display());
        for bin in files {
            let bytes = fs::read(&bin).unwrap();
            let name = bin.display();

            let dump = tools::dump_csv(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(dump, text(&bin.with_extension("dump")), "dump of {name}");

            // `.info` begins with the store path the reference was given, e.g.
            // `store/queue/depth/dc/east/10s:` for queue.depth.dc.east.10s.bin.
            let want = text(&bin.with_extension("info"));
            let first = want.lines().next().unwrap();
            let path_arg = first.strip_suffix(':').expect("info starts with `PATH:`");
            let stem = bin.file_stem().unwrap().to_str().unwrap();
            assert_eq!(
                path_arg,
                format!("store/{}", stem.replace('.', "/")),
                "{name}"
            );
            let got = tools::info(path_arg, &bytes).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got, want, "info of {name}");
            checked += 1;
        }
    }
    assert!(checked >= 100, "only {checked} golden files checked");
}
