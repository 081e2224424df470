//! Our writer against the reference's: feed the golden inputs through the store with
//! the golden options and clock moves, and compare every counter file's dump, info and
//! bytes (name field masked) with what the C++ istatd wrote.
//!
//! The stat-line parsing here is a minimal stand-in for the daemon's (docs/interfaces.md
//! §2.4–2.5: caret expansion, `*` marker, munging, 2/3/7 fields) so that the storage
//! crate can be checked on its own.

use std::path::{Path, PathBuf};

use glommio::{LocalExecutorBuilder, Placement};
use istatd_storage::counter::Sample;
use istatd_storage::format::{NAME_LEN, OFF_NAME};
use istatd_storage::retention::parse_retentions;
use istatd_storage::store::{Store, StoreOptions};
use istatd_storage::tools;

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIP: ../shared/golden not found next to the repository; golden tests skipped");
        None
    }
}

fn munge(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'/' | b':' | b'\\' | b'"' | b'\'' => '_',
            b if !(0x21..=0x7e).contains(&b) => '_',
            b => (b as char).to_ascii_lowercase(),
        })
        .collect()
}

fn expand_carets(name: &str) -> Vec<String> {
    let Some(pos) = name.find('^') else {
        return vec![name.to_string()];
    };
    let base = &name[..pos];
    let rest = &name[pos + 1..];
    let mut out = Vec::new();
    let segs: Vec<&str> = rest.split('^').collect();
    for (i, s) in segs.iter().enumerate() {
        if s.is_empty() {
            if i == segs.len() - 1 && !base.is_empty() {
                out.push(base.to_string());
            }
            continue;
        }
        out.push(if base.is_empty() {
            s.to_string()
        } else {
            format!("{base}.{s}")
        });
    }
    out
}

/// (key, event, sample) for each valid line.
fn parse_line(line: &str, now: i64) -> Vec<(String, bool, Sample)> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    let sample = match f.len() {
        2 => f[1].parse().ok().map(|v| Sample::value(now, v)),
        3 => match (f[1].parse(), f[2].parse()) {
            (Ok(t), Ok(v)) => Some(Sample::value(t, v)),
            _ => None,
        },
        7 => (|| {
            Some(Sample {
                time: f[1].parse().ok()?,
                sum: f[2].parse().ok()?,
                sum_sq: f[3].parse().ok()?,
                min: f[4].parse().ok()?,
                max: f[5].parse().ok()?,
                count: f[6].parse().ok()?,
            })
        })(),
        _ => None,
    };
    let Some(sample) = sample else { return vec![] };
    expand_carets(f[0])
        .into_iter()
        .filter_map(|n| {
            let (event, n) = match n.strip_prefix('*') {
                Some(rest) => (true, rest.to_string()),
                None => (false, n),
            };
            let key = munge(&n);
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return None;
            }
            Some((key, event, sample))
        })
        .collect()
}

/// What happens to the daemon: feed lines, or a clock move followed by a periodic flush
/// round and an admin flush, then a capture to compare.
enum Step<'a> {
    Input(&'a str),
    Flushes { periodic_rounds: usize, force: bool },
    Clock(i64),
    Compare(&'a str),
}

fn run_case(
    case: &str,
    retention: &str,
    fake_time: i64,
    steps: Vec<Step<'static>>,
    skip: fn(&str) -> bool,
) {
    run_case_with_cache(case, retention, fake_time, steps, skip, 4096)
}

fn run_case_with_cache(
    case: &str,
    retention: &str,
    fake_time: i64,
    steps: Vec<Step<'static>>,
    skip: fn(&str) -> bool,
    cache_pages: usize,
) {
    let Some(golden) = shared() else { return };
    let dir = std::env::temp_dir().join(format!(
        "istatd-golden-{case}-{cache_pages}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let store_dir = dir.join("store");
    let golden_case = golden.join(case);
    let retention = retention.to_string();
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1 << 20)
        .make()
        .unwrap()
        .run(async move {
            let mut opts = StoreOptions::new(&store_dir, parse_retentions(&retention).unwrap());
            opts.page_cache_pages = cache_pages;
            opts.max_open_files = cache_pages.min(64);
            let store = Store::open(opts).await.unwrap();
            let mut now = fake_time;
            for step in steps {
                match step {
                    Step::Input(file) => {
                        let text = std::fs::read_to_string(golden_case.join(file)).unwrap();
                        for line in text.lines() {
                            for (key, event, s) in parse_line(line, now) {
                                let _ = store.record(&key, event, s, now).await;
                            }
                        }
                    }
                    Step::Clock(t) => now = t,
                    Step::Flushes {
                        periodic_rounds,
                        force,
                    } => {
                        for _ in 0..periodic_rounds {
                            store.flush_all(false, now).await.unwrap();
                        }
                        if force {
                            store.flush_all(true, now).await.unwrap();
                        }
                    }
                    Step::Compare(sub) => compare(&golden_case.join(sub), &store_dir, skip),
                }
            }
            store.close(now).await.unwrap();
        });
    // ISTATD_KEEP_GOLDEN_STORE=1 keeps the store for inspection (README's sample
    // file storage/testdata/sample.10s is web/latency/server1/10s of the basic case).
    if std::env::var_os("ISTATD_KEEP_GOLDEN_STORE").is_some() {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn compare(files: &Path, store_dir: &Path, skip: fn(&str) -> bool) {
    let mut names: Vec<String> = std::fs::read_dir(files)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".bin").map(str::to_string))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no golden files in {}", files.display());
    let mut failures = Vec::new();
    for name in &names {
        if skip(name) {
            continue;
        }
        let info_want = std::fs::read_to_string(files.join(format!("{name}.info"))).unwrap();
        let rel_arg = info_want
            .lines()
            .next()
            .unwrap()
            .trim_end_matches(':')
            .to_string();
        let rel = rel_arg.strip_prefix("store/").unwrap();
        let ours = match std::fs::read(store_dir.join(rel)) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{name}: missing ({e})"));
                continue;
            }
        };
        let dump_want = std::fs::read_to_string(files.join(format!("{name}.dump"))).unwrap();
        let dump_got = tools::dump_csv(&ours).map_err(|e| e.to_string()).unwrap();
        if dump_got != dump_want {
            failures.push(format!(
                "{name}: dump differs\n--- want\n{dump_want}--- got\n{dump_got}"
            ));
            continue;
        }
        let info_got = tools::info(&rel_arg, &ours).unwrap();
        if info_got != info_want {
            failures.push(format!(
                "{name}: info differs\n--- want\n{info_want}--- got\n{info_got}"
            ));
            continue;
        }
        let mut want_bin = std::fs::read(files.join(format!("{name}.bin"))).unwrap();
        let mut got_bin = ours;
        want_bin[OFF_NAME..OFF_NAME + NAME_LEN].fill(0);
        got_bin[OFF_NAME..OFF_NAME + NAME_LEN].fill(0);
        if want_bin != got_bin {
            let first = want_bin.iter().zip(&got_bin).position(|(a, b)| a != b);
            failures.push(format!(
                "{name}: bytes differ (lengths {} / {}, first difference at {first:?})",
                want_bin.len(),
                got_bin.len()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

#[test]
fn basic_case_writes_identical_files() {
    run_case(
        "basic",
        "10s:1h,5m:1d",
        1600002700,
        vec![
            Step::Input("input.txt"),
            Step::Flushes {
                periodic_rounds: 1,
                force: true,
            },
            Step::Compare("files"),
        ],
        |_| false,
    );
}

#[test]
fn events_case_writes_identical_files_as_the_clock_moves() {
    run_case(
        "events",
        "10s:1h,5m:1d",
        1600002700,
        vec![
            Step::Input("input.txt"),
            Step::Flushes {
                periodic_rounds: 1,
                force: true,
            },
            Step::Compare("files0"),
            Step::Clock(1600002760),
            Step::Flushes {
                periodic_rounds: 1,
                force: true,
            },
            Step::Compare("files1"),
            Step::Clock(1600003100),
            Step::Flushes {
                periodic_rounds: 1,
                force: true,
            },
            Step::Compare("files2"),
        ],
        |_| false,
    );
}

#[test]
fn retention_case_writes_identical_files() {
    // The trailing files depend on how many periodic flush rounds ran while the
    // reference slept (docs/file-format.md, "Trailing window"); several rounds before and
    // after the admin flush, as in the case's procedure.
    run_case(
        "retention",
        istatd_storage::retention::DEFAULT_RETENTION,
        1600002700,
        vec![
            Step::Input("input.txt"),
            Step::Flushes {
                periodic_rounds: 5,
                force: true,
            },
            Step::Flushes {
                periodic_rounds: 5,
                force: false,
            },
            Step::Compare("files"),
        ],
        |_| false,
    );
}

#[test]
fn events_case_with_a_tiny_page_cache_and_few_descriptors() {
    // 16 pages and 16 descriptors for 36 files: every path through evictions, the
    // overlay spill and re-reads must still give the reference's bytes.
    run_case_with_cache(
        "events",
        "10s:1h,5m:1d",
        1600002700,
        vec![
            Step::Input("input.txt"),
            Step::Flushes {
                periodic_rounds: 1,
                force: true,
            },
            Step::Compare("files0"),
            Step::Clock(1600003100),
            Step::Flushes {
                periodic_rounds: 1,
                force: true,
            },
        ],
        |_| false,
        16,
    );
}

#[test]
fn retention_case_with_a_tiny_page_cache() {
    run_case_with_cache(
        "retention",
        istatd_storage::retention::DEFAULT_RETENTION,
        1600002700,
        vec![
            Step::Input("input.txt"),
            Step::Flushes {
                periodic_rounds: 5,
                force: true,
            },
            Step::Flushes {
                periodic_rounds: 5,
                force: false,
            },
            Step::Compare("files"),
        ],
        |_| false,
        16,
    );
}
