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

/// Damaged versions of `valid`.
fn damaged(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let valid = Arc::new(valid);
    let len = valid.len();
    let (a, b, c, d) = (valid.clone(), valid.clone(), valid.clone(), valid);
    prop_oneof![
        (0..=len).prop_map(move |at| a[..at].to_vec()),
        (0..len.max(1), any::<u8>()).prop_map(move |(at, byte)| {
            let mut bytes = b.to_vec();
            if let Some(slot) = bytes.get_mut(at) {
                *slot ^= byte | 1;
            }
            bytes
        }),
        (0..=len, prop::collection::vec(any::<u8>(), 1..32)).prop_map(move |(at, junk)| {
            let mut bytes = c.to_vec();
            bytes.splice(at..at, junk);
            bytes
        }),
        (0..=len, 0..POISON.len()).prop_map(move |(at, which)| {
            let mut bytes = d.to_vec();
            bytes.splice(at..at, POISON[which].bytes());
            bytes
        }),
        prop::collection::vec(any::<u8>(), 0..2048),
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

/// Feeds damaged copies of `valid` (written to `relative` under a fresh directory, the other
/// files of `setup` in place) to `read`; an error must name the file.
fn check_reader(
    name: &str,
    valid: Vec<u8>,
    relative: &str,
    setup: &dyn Fn(&Path),
    read: &dyn Fn(&Path) -> Result<(), String>,
) {
    let seed = test_seed(29);
    let scratch = temp_dir(&format!("hostile-{}", name.replace(' ', "-")));
    let file_name = Path::new(relative)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let case = std::sync::atomic::AtomicUsize::new(0);
    let rejected = std::sync::atomic::AtomicUsize::new(0);
    runner(seed)
        .run(&damaged(valid), |bytes| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = scratch.join(format!("case{n}"));
            std::fs::create_dir_all(&dir).unwrap();
            setup(&dir);
            let path = dir.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            if let Err(message) = read(&dir) {
                rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                prop_assert!(
                    message.contains(&file_name),
                    "seed {seed}, {name}: the error does not name {file_name}: {message}"
                );
            }
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("seed {seed}, {name}: {failure}"));
    println!(
        "{name}: {} damaged files, {} rejected with an error naming {file_name}",
        case.into_inner(),
        rejected.into_inner()
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

fn text<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<(), String> {
    result.map(|_| ()).map_err(|e| e.to_string())
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
    );
    check_reader(
        "config.toml",
        read("config.toml"),
        "config.toml",
        &nothing,
        &|d| text(run(d).read_config()),
    );
    check_reader(
        "summary.json",
        read("summary.json"),
        "summary.json",
        &nothing,
        &|d| text(run(d).read_summary()),
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
        &|d| text(run(d).read_checkpoints()).and(text(run(d).load_checkpoint())),
    );
    check_reader(
        "metrics.csv",
        read("metrics.csv"),
        "metrics.csv",
        &nothing,
        &|d| text(run(d).read_metrics()),
    );
    check_reader(
        "margins.csv",
        read("margins.csv"),
        "margins.csv",
        &nothing,
        &|d| text(run(d).read_margins()),
    );
    check_reader(
        "balance.csv",
        read("balance.csv"),
        "balance.csv",
        &nothing,
        &|d| text(run(d).read_balance()),
    );
    check_reader(
        "pruning.csv",
        read("pruning.csv"),
        "pruning.csv",
        &nothing,
        &|d| text(run(d).read_pruning()),
    );
    check_reader(
        "histograms.jsonl",
        read("histograms.jsonl"),
        "histograms.jsonl",
        &nothing,
        &|d| text(run(d).read_histograms()),
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
        &|d| text(read_events(d)),
    );
    let batches: Vec<&str> = FILES.iter().skip(1).copied().collect();
    check_reader(
        "CIFAR-10 batch",
        std::fs::read(f.data.join(FILES[0])).unwrap(),
        FILES[0],
        &copy_into(&f.data, &batches),
        &|d| text(mirrorburn::data::read_dir(d)),
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
    );
}
