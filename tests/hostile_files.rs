//! Every reader of a file that a user or a crash can put in front of mirrorburn, fed damaged
//! copies of a valid file (truncations, flipped bytes, inserted garbage, poisoned numbers,
//! arbitrary bytes): each must return a typed error naming the file (or, where the damage
//! leaves a valid file, a value), never panic or hang. The valid files come from a real tiny
//! training run and its pruning; the damage is drawn by proptest from a fixed seed
//! (`MIRRORBURN_TEST_SEED` overrides it), [`CASES`] cases per reader.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use mirrorburn::config::TrainConfig;
use mirrorburn::rundir::{RunDir, read_events};
use mirrorburn::sweep::Sweep;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Damaged copies tried per reader.
const CASES: u32 = 256;

/// Text that breaks numbers and structure when spliced into a file.
const POISON: [&str; 10] = [
    "NaN",
    "-inf",
    "1e999",
    "-1",
    "18446744073709551616",
    "\"",
    ",",
    "\n",
    "{",
    "\u{0}",
];

/// How a valid file was damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Damage {
    /// Cut short (possibly to nothing).
    Truncated,
    /// One byte changed.
    Flipped,
    /// Random bytes inserted.
    Inserted,
    /// One of [`POISON`] inserted.
    Poisoned,
    /// Arbitrary bytes instead of the file.
    Arbitrary,
}

use Damage::*;

/// Damaged versions of `valid`, with how they were damaged.
fn damaged(valid: Vec<u8>) -> impl Strategy<Value = (Damage, Vec<u8>)> {
    let valid = Arc::new(valid);
    let len = valid.len();
    let (a, b, c, d) = (valid.clone(), valid.clone(), valid.clone(), valid);
    prop_oneof![
        (0..len.max(1)).prop_map(move |at| (Truncated, a[..at].to_vec())),
        (0..len.max(1), any::<u8>()).prop_map(move |(at, byte)| {
            let mut bytes = b.to_vec();
            if let Some(slot) = bytes.get_mut(at) {
                *slot ^= byte | 1;
            }
            (Flipped, bytes)
        }),
        (0..=len, prop::collection::vec(any::<u8>(), 1..32)).prop_map(move |(at, junk)| {
            let mut bytes = c.to_vec();
            bytes.splice(at..at, junk);
            (Inserted, bytes)
        }),
        (0..=len, 0..POISON.len()).prop_map(move |(at, which)| {
            let mut bytes = d.to_vec();
            bytes.splice(at..at, POISON[which].bytes());
            (Poisoned, bytes)
        }),
        prop::collection::vec(any::<u8>(), 0..2048).prop_map(|bytes| (Arbitrary, bytes)),
    ]
}

/// A seeded proptest runner that writes no failure files.
fn runner(seed: u64) -> TestRunner {
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

/// A finished tiny run (2 epochs, pruned) and its data, as a source of valid files.
struct Fixture {
    _root: TempDir,
    data: PathBuf,
    run: PathBuf,
    config: PathBuf,
}

fn fixture() -> Fixture {
    let root = workspace("hostile", 30, 30, &tiny_config("hostile", 3, 2));
    let (data, config, run) = (
        root.join("data"),
        root.join("config.toml"),
        root.join("run"),
    );
    let mirrorburn = |args: &[&std::ffi::OsStr]| {
        let output = Command::new(env!("CARGO_BIN_EXE_mirrorburn"))
            .args(args)
            .output()
            .unwrap();
        assert_success(&output, "fixture");
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let (config_arg, data_arg, run_arg) = (config.as_os_str(), data.as_os_str(), run.as_os_str());
    mirrorburn(&[
        os("train"),
        os("--config"),
        config_arg,
        os("--data-dir"),
        data_arg,
        os("--out"),
        run_arg,
    ]);
    mirrorburn(&[
        os("prune"),
        os("--sparsities"),
        os("0,0.5"),
        os("--run"),
        run_arg,
        os("--data-dir"),
        data_arg,
    ]);
    Fixture {
        _root: root,
        data,
        run,
        config,
    }
}

/// What a reader must do with damaged input, beyond naming the file in every error.
struct Expect {
    /// Damage every case of which must be rejected (the format can tell: a length, a checksum,
    /// a required structure).
    rejects: &'static [Damage],
    /// Damage whose accepted cases must read back exactly the undamaged file's values (the
    /// format's checksums cover every byte, or the damage cannot reach a value unnoticed).
    intact_when_accepted: &'static [Damage],
    /// An accepted truncated file reads back a prefix of the records (appended files: a torn
    /// last record is skipped, never read as a mangled one).
    prefix_when_truncated: bool,
}

/// Feeds damaged copies of `valid` (written to `relative` under a fresh directory, the other
/// files of `setup` in place) to `read`, which returns a rendering of the values it read. Every
/// error must name the file; `expect` says what must be rejected and what, when accepted, must
/// read back unchanged. Prints the count tried and rejected per damage.
fn check_reader(
    name: &str,
    valid: Vec<u8>,
    relative: &str,
    setup: &dyn Fn(&Path),
    read: &dyn Fn(&Path) -> Result<Vec<String>, String>,
    expect: Expect,
) {
    let seed = test_seed(29);
    let scratch = temp_dir(&format!("hostile-{}", name.replace(' ', "-")));
    let file_name = Path::new(relative)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let case = std::sync::atomic::AtomicUsize::new(0);
    let write_and_read = |bytes: &[u8]| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = scratch.join(format!("case{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        setup(&dir);
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let result = read(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        result
    };
    let original = write_and_read(&valid)
        .unwrap_or_else(|e| panic!("{name}: the undamaged file is rejected: {e}"));
    // Per damage: tried, rejected.
    let tally = std::sync::Mutex::new(std::collections::BTreeMap::<Damage, (usize, usize)>::new());
    runner(seed)
        .run(&damaged(valid.clone()), |(damage, bytes)| {
            let result = write_and_read(&bytes);
            let mut tally = tally.lock().unwrap();
            let entry = tally.entry(damage).or_default();
            entry.0 += 1;
            match result {
                Err(message) => {
                    entry.1 += 1;
                    prop_assert!(
                        message.contains(&file_name),
                        "seed {seed}, {name}: the error does not name {file_name}: {message}"
                    );
                }
                Ok(values) => {
                    prop_assert!(
                        bytes == valid || !expect.rejects.contains(&damage),
                        "seed {seed}, {name}: {damage:?} file accepted ({} bytes)",
                        bytes.len()
                    );
                    prop_assert!(
                        values == original || !expect.intact_when_accepted.contains(&damage),
                        "seed {seed}, {name}: a {damage:?} file read back other values"
                    );
                    prop_assert!(
                        damage != Truncated
                            || !expect.prefix_when_truncated
                            || original.starts_with(&values),
                        "seed {seed}, {name}: a truncated file read back records that are not \
                         a prefix of the file's: {values:?}"
                    );
                }
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("seed {seed}, {name}: {failure}"));
    let tally = tally.into_inner().unwrap();
    let counts: Vec<String> = tally
        .iter()
        .map(|(damage, (tried, rejected))| format!("{damage:?} {rejected}/{tried}"))
        .collect();
    println!(
        "{name}: rejected per damage (naming {file_name}): {}",
        counts.join(", ")
    );
}

fn copy_into(from: &Path, names: &[&str]) -> impl Fn(&Path) {
    let files: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| (n.to_string(), std::fs::read(from.join(n)).unwrap()))
        .collect();
    move |dir: &Path| {
        for (name, bytes) in &files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }
}

fn nothing(_: &Path) {}

/// The value read (its `Debug` rendering), or the error's message.
fn text<T: std::fmt::Debug, E: std::fmt::Display>(
    result: Result<T, E>,
) -> Result<Vec<String>, String> {
    result
        .map(|v| vec![format!("{v:?}")])
        .map_err(|e| e.to_string())
}

/// The records read (each one's `Debug` rendering), or the error's message.
fn records<T: std::fmt::Debug, E: std::fmt::Display>(
    result: Result<Vec<T>, E>,
) -> Result<Vec<String>, String> {
    result
        .map(|v| v.iter().map(|r| format!("{r:?}")).collect())
        .map_err(|e| e.to_string())
}

#[test]
fn every_reader_survives_damaged_files() {
    let f = fixture();
    let read = |relative: &str| std::fs::read(f.run.join(relative)).unwrap();
    let run = |dir: &Path| RunDir::new(dir);

    check_reader(
        "train config",
        std::fs::read(&f.config).unwrap(),
        "train.toml",
        &nothing,
        &|d| text(TrainConfig::load(&d.join("train.toml"), &[])),
        Expect {
            rejects: &[],
            intact_when_accepted: &[],
            prefix_when_truncated: false,
        },
    );
    let sweep = r#"name = "s"
base = "train.toml"
set = { epochs = 1 }

[grid]
seed = [1, 2]

[[methods]]
name = "gd"
set = { "optimizer.potential" = { kind = "gd" } }
"#;
    let base = std::fs::read(&f.config).unwrap();
    check_reader(
        "sweep file",
        sweep.as_bytes().to_vec(),
        "sweep.toml",
        &move |d| std::fs::write(d.join("train.toml"), &base).unwrap(),
        &|d| text(Sweep::load(&d.join("sweep.toml"), &[])),
        Expect {
            rejects: &[],
            intact_when_accepted: &[],
            prefix_when_truncated: false,
        },
    );
    check_reader(
        "config.toml",
        read("config.toml"),
        "config.toml",
        &nothing,
        &|d| text(run(d).read_config()),
        Expect {
            rejects: &[],
            intact_when_accepted: &[],
            prefix_when_truncated: false,
        },
    );
    check_reader(
        "summary.json",
        read("summary.json"),
        "summary.json",
        &nothing,
        &|d| text(run(d).read_summary()),
        Expect {
            rejects: &[Truncated],
            intact_when_accepted: &[],
            prefix_when_truncated: false,
        },
    );
    let checkpoints = copy_into(
        &f.run,
        &[
            "checkpoints/model-epoch00001.bpk",
            "checkpoints/optimizer-epoch00001.bpk",
            "checkpoints/model-epoch00002.bpk",
            "checkpoints/optimizer-epoch00002.bpk",
        ],
    );
    check_reader(
        "checkpoint.json",
        read("checkpoint.json"),
        "checkpoint.json",
        &checkpoints,
        &|d| {
            text(
                run(d)
                    .read_checkpoints()
                    .and_then(|i| Ok((i, run(d).load_checkpoint()?))),
            )
        },
        Expect {
            rejects: &[Truncated],
            intact_when_accepted: &[],
            prefix_when_truncated: false,
        },
    );
    check_reader(
        "metrics.csv",
        read("metrics.csv"),
        "metrics.csv",
        &nothing,
        &|d| records(run(d).read_metrics()),
        Expect {
            rejects: &[],
            intact_when_accepted: &[],
            prefix_when_truncated: true,
        },
    );
    check_reader(
        "margins.csv",
        read("margins.csv"),
        "margins.csv",
        &nothing,
        &|d| records(run(d).read_margins()),
        Expect {
            rejects: &[],
            intact_when_accepted: &[],
            prefix_when_truncated: true,
        },
    );
    check_reader(
        "balance.csv",
        read("balance.csv"),
        "balance.csv",
        &nothing,
        &|d| records(run(d).read_balance()),
        Expect {
            rejects: &[],
            intact_when_accepted: &[],
            prefix_when_truncated: true,
        },
    );
    check_reader(
        "pruning.csv",
        read("pruning.csv"),
        "pruning.csv",
        &nothing,
        &|d| records(run(d).read_pruning().map(Option::unwrap_or_default)),
        Expect {
            rejects: &[],
            intact_when_accepted: &[],
            prefix_when_truncated: true,
        },
    );
    check_reader(
        "histograms.jsonl",
        read("histograms.jsonl"),
        "histograms.jsonl",
        &nothing,
        &|d| records(run(d).read_histograms()),
        Expect {
            rejects: &[],
            intact_when_accepted: &[],
            prefix_when_truncated: true,
        },
    );
    let events = std::fs::read_dir(f.run.join("tensorboard"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let events_name = format!("tensorboard/{}", events.file_name().to_string_lossy());
    check_reader(
        "TensorBoard events",
        std::fs::read(events.path()).unwrap(),
        &events_name,
        &nothing,
        &|d| records(read_events(d)),
        // Every record carries CRCs of its length and data.
        Expect {
            rejects: &[Flipped, Inserted, Poisoned],
            intact_when_accepted: &[],
            prefix_when_truncated: true,
        },
    );
    let batches: Vec<&str> = FILES.iter().skip(1).copied().collect();
    check_reader(
        "CIFAR-10 batch",
        std::fs::read(f.data.join(FILES[0])).unwrap(),
        FILES[0],
        &copy_into(&f.data, &batches),
        &|d| text(mirrorburn::data::read_dir(d)),
        // 3,073 bytes per image: any change of length is refused. A changed pixel cannot be seen;
        // a label out of range is checked below.
        Expect {
            rejects: &[Truncated, Inserted, Poisoned],
            intact_when_accepted: &[],
            prefix_when_truncated: false,
        },
    );
    check_reader(
        "CIFAR-10 archive",
        archive_bytes(&f.data),
        "cifar-10-binary.tar.gz",
        &nothing,
        &|d| {
            text(mirrorburn::data::read_archive(
                &d.join("cifar-10-binary.tar.gz"),
            ))
        },
        // gzip's CRC-32 and length cover every byte of the tar stream.
        Expect {
            rejects: &[Truncated],
            intact_when_accepted: &[Flipped, Inserted, Poisoned],
            prefix_when_truncated: false,
        },
    );
}

/// Damage each reader must refuse, made on purpose rather than drawn: a truncated checkpoint
/// (the previous one is used, saying why; with both damaged, an error), a CIFAR-10 label out of
/// range, a NaN learning rate, an unknown run status. Prints what each reported.
#[test]
fn named_damage_is_refused_and_says_what_it_is() {
    let f = fixture();
    let scratch = temp_dir("hostile-named");
    let copy = |label: &str| {
        let dir = scratch.join(label);
        let status = Command::new("cp")
            .arg("-a")
            .arg(&f.run)
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        dir
    };
    let truncate = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    };

    let run = copy("truncated-latest");
    truncate(&run.join("checkpoints/model-epoch00002.bpk"));
    let loaded = RunDir::new(&run).load_checkpoint().unwrap().unwrap();
    let reason = loaded.fell_back.clone().unwrap_or_default();
    println!(
        "truncated latest model: epoch {} used; {reason}",
        loaded.epoch
    );
    assert_eq!(loaded.epoch, 1, "the previous, intact checkpoint");
    assert!(reason.contains("model-epoch00002.bpk"), "{reason}");

    let run = copy("truncated-both");
    truncate(&run.join("checkpoints/model-epoch00002.bpk"));
    truncate(&run.join("checkpoints/optimizer-epoch00001.bpk"));
    let error = RunDir::new(&run).load_checkpoint().unwrap_err().to_string();
    println!("both checkpoints truncated: {error}");
    assert!(
        error.contains("epoch00002") && error.contains("epoch00001"),
        "{error}"
    );

    let data = scratch.join("label-out-of-range");
    std::fs::create_dir_all(&data).unwrap();
    for name in FILES {
        std::fs::copy(f.data.join(name), data.join(name)).unwrap();
    }
    let mut batch = std::fs::read(data.join(FILES[0])).unwrap();
    batch[3073] = 10; // the second image's label
    std::fs::write(data.join(FILES[0]), batch).unwrap();
    let error = mirrorburn::data::read_dir(&data).unwrap_err().to_string();
    println!("label 10: {error}");
    assert!(error.contains(FILES[0]) && error.contains("10"), "{error}");

    let config = scratch.join("nan.toml");
    let text = std::fs::read_to_string(&f.config).unwrap();
    std::fs::write(&config, text.replace("lr = 0.05", "lr = nan")).unwrap();
    let error = TrainConfig::load(&config, &[]).unwrap_err().to_string();
    println!("lr = nan: {error}");
    assert!(
        error.contains("nan.toml") && error.contains("lr"),
        "{error}"
    );

    let run = copy("unknown-status");
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    std::fs::write(
        run.join("summary.json"),
        summary.replace("\"completed\"", "\"finished\""),
    )
    .unwrap();
    let error = RunDir::new(&run).read_summary().unwrap_err().to_string();
    println!("status \"finished\": {error}");
    assert!(error.contains("summary.json"), "{error}");
}
