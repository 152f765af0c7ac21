//! The `train` command end to end on generated CIFAR-format data: exact resume after SIGKILL,
//! divergence, and clear errors for bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use common::*;
use mirrorburn::model::Vgg;
use mirrorburn::rundir::{CheckpointIndex, RunStatus, Summary};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mirrorburn"))
}

/// A directory with generated data (5 x 40 training, 40 test images) and the test config.
fn setup(label: &str) -> TempDir {
    workspace(label, 40, 40, &tiny_config("cli-test", 7, 6))
}

fn train(config: &Path, data: &Path, out: &Path, extra: &[&str]) -> Command {
    mirrorburn_command(
        [Path::new("train"), Path::new("--config"), config],
        data,
        out,
        extra,
    )
}

fn run(mut command: Command) -> Output {
    command.output().unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn summary(out: &Path) -> Summary {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

/// `metrics.csv` without the timing columns (wall seconds, images/s), which differ run to run.
fn deterministic_metrics(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|line| line.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect()
}

/// Every weight of the final checkpoint (record files also hold per-process parameter ids, so
/// the values are compared, not the bytes).
fn final_weights(out: &Path) -> Vec<f32> {
    let index: CheckpointIndex =
        serde_json::from_slice(&std::fs::read(out.join("checkpoint.json")).unwrap()).unwrap();
    let bytes = std::fs::read(out.join(index.latest.model.path)).unwrap();
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).unwrap();
    let model = Vgg::new(16, 0, &Device::flex())
        .try_load_record(record)
        .unwrap();
    let mut values: Vec<f32> = Vec::new();
    for conv in &model.features {
        values.extend(conv.weight.val().into_data().iter::<f32>());
    }
    values.extend(model.classifier.weight.val().into_data().iter::<f32>());
    values
}

#[test]
fn a_run_killed_mid_training_resumes_to_the_same_result() {
    let root = setup("resume");
    let (data, config) = (root.join("data"), root.join("config.toml"));
    let straight = root.join("straight");
    let output = run(train(&config, &data, &straight, &[]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(summary(&straight).status, RunStatus::Completed);
    assert_eq!(
        deterministic_metrics(&straight).len(),
        7,
        "header + 6 epochs"
    );

    // Same run, killed with SIGKILL once its second checkpoint exists, then resumed.
    let interrupted = root.join("interrupted");
    let mut child = train(&config, &data, &interrupted, &[]).spawn().unwrap();
    wait_until(&mut child, "the second checkpoint", || {
        read_checkpoint_epoch(&interrupted).is_some_and(|e| e >= 2)
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed = summary(&interrupted);
    assert_eq!(
        killed.status,
        RunStatus::Running,
        "a killed run still says running"
    );
    assert!(killed.epochs_completed < 6, "killed before the end");

    let output = run(train(&config, &data, &interrupted, &["--resume"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(summary(&interrupted).status, RunStatus::Completed);
    assert_eq!(
        deterministic_metrics(&interrupted),
        deterministic_metrics(&straight)
    );
    for file in ["margins.csv", "balance.csv", "histograms.jsonl"] {
        let (a, b) = (read(&interrupted.join(file)), read(&straight.join(file)));
        assert!(a == b, "{file} differs after resume");
    }
    assert_same_weights(&interrupted, &straight, "after resume");

    // A damaged latest checkpoint: --resume falls back to the previous one, says so, retrains
    // the last epoch, and ends with the same weights.
    let index: CheckpointIndex =
        serde_json::from_slice(&std::fs::read(interrupted.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(index.previous.as_ref().unwrap().epoch, 5);
    let model = interrupted.join(&index.latest.model.path);
    let mut bytes = std::fs::read(&model).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&model, bytes).unwrap();
    let output = run(train(&config, &data, &interrupted, &["--resume"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("checkpoint of epoch 6 is damaged") && message.contains("epoch 5"),
        "{message}"
    );
    assert_eq!(
        deterministic_metrics(&interrupted),
        deterministic_metrics(&straight)
    );
    assert_same_weights(&interrupted, &straight, "after falling back");
}

fn assert_same_weights(a: &Path, b: &Path, when: &str) {
    let (a, b) = (final_weights(a), final_weights(b));
    assert_eq!(a.len(), b.len());
    let differing = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count();
    assert_eq!(
        differing,
        0,
        "{differing} of {} weights differ {when}",
        a.len()
    );
}

#[test]
fn a_diverging_run_is_marked_and_exits_non_zero() {
    let root = setup("diverge");
    let (data, config) = (root.join("data"), root.join("config.toml"));
    let out = root.join("run");
    let output = run(train(
        &config,
        &data,
        &out,
        &[
            "--set",
            "lr=1e12",
            "--set",
            "optimizer.potential={ kind = \"gd\" }",
        ],
    ));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("diverged") && message.contains("lower `lr`"),
        "{message}"
    );
    let summary = summary(&out);
    assert_eq!(summary.status, RunStatus::Diverged);
    assert!(summary.error.unwrap().contains("non-finite"));
    assert!(out.join("config.toml").is_file(), "earlier files are kept");
}

#[test]
fn an_existing_run_is_not_overwritten_without_resume() {
    let root = setup("exists");
    let (data, config) = (root.join("data"), root.join("config.toml"));
    let out = root.join("run");
    assert!(
        run(train(&config, &data, &out, &["--set", "epochs=1"]))
            .status
            .success()
    );
    let before = std::fs::read(out.join("metrics.csv")).unwrap();
    let output = run(train(&config, &data, &out, &["--set", "epochs=1"]));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--resume"), "{}", stderr(&output));
    assert_eq!(std::fs::read(out.join("metrics.csv")).unwrap(), before);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let root = setup("errors");
    let (data, config) = (root.join("data"), root.join("config.toml"));
    let missing = root.join("no-such-dir");
    let cases: [(&Path, Vec<&str>, &str); 4] = [
        (
            &data,
            vec!["--set", "model.width=3"],
            "unknown key `model.width`",
        ),
        (
            &data,
            vec![
                "--set",
                "optimizer.potential={ kind = \"p_homogeneous\", p = 1.0, lambda = 1.0 }",
            ],
            "potential.p",
        ),
        (&data, vec!["--backend", "cuda"], "--features cuda"),
        (&missing, vec![], "MIRRORBURN_DATA"),
    ];
    for (index, (data_dir, args, expected)) in cases.into_iter().enumerate() {
        let command = train(&config, data_dir, &root.join(format!("run{index}")), &args);
        let output = run(command);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn unreadable_run_state_is_an_error_never_a_silent_restart() {
    let root = setup("unreadable");
    let (data, config) = (root.join("data"), root.join("config.toml"));
    let out = root.join("run");
    let first = run(train(&config, &data, &out, &["--set", "epochs=2"]));
    assert!(first.status.success(), "{}", stderr(&first));
    let metrics = std::fs::read(out.join("metrics.csv")).unwrap();

    for (file, extra) in [
        ("summary.json", vec![]),
        ("summary.json", vec!["--resume"]),
        ("checkpoint.json", vec!["--resume"]),
    ] {
        let original = std::fs::read(out.join(file)).unwrap();
        std::fs::write(out.join(file), b"{\"truncated\": ").unwrap();
        let mut args = vec!["--set", "epochs=3"];
        args.extend(extra.iter().copied());
        let output = run(train(&config, &data, &out, &args));
        assert!(!output.status.success(), "{file} {extra:?} must fail");
        let message = stderr(&output);
        assert!(
            message.contains(file) && message.contains("unreadable"),
            "{file} {extra:?}: {message}"
        );
        assert_eq!(std::fs::read(out.join("metrics.csv")).unwrap(), metrics);
        std::fs::write(out.join(file), original).unwrap();
    }
}

#[test]
fn a_fresh_run_does_not_keep_stale_diagnostics() {
    let root = setup("stale");
    let (data, config) = (root.join("data"), root.join("config.toml"));
    let out = root.join("run");
    let first = run(train(&config, &data, &out, &["--set", "epochs=1"]));
    assert!(first.status.success(), "{}", stderr(&first));
    // Leftovers of an earlier run whose summary and checkpoint are gone.
    for file in ["summary.json", "checkpoint.json", "metrics.csv"] {
        std::fs::remove_file(out.join(file)).unwrap();
    }
    let again = run(train(&config, &data, &out, &["--set", "epochs=1"]));
    assert!(again.status.success(), "{}", stderr(&again));
    let margins = read(&out.join("margins.csv"));
    let epochs: Vec<&str> = margins
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(epochs, vec!["0", "1"], "{margins}");
    let balance = read(&out.join("balance.csv"));
    assert_eq!(
        balance.lines().filter(|l| l.starts_with("0,")).count(),
        14,
        "{balance}"
    );
}

/// The run lock is the operating system's: refused while the first process lives (whatever the
/// lock file says, e.g. another node's host and a PID that does not exist here), free once it is
/// killed with SIGKILL.
#[test]
fn a_second_process_on_the_same_run_directory_is_refused() {
    let root = setup("lock");
    let (data, config) = (root.join("data"), root.join("config.toml"));
    let out = root.join("run");
    let lock = out.join("run.lock");
    let mut first = train(&config, &data, &out, &["--set", "epochs=50"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(&mut first, "the lock", || {
        std::fs::read_to_string(&lock).is_ok_and(|text| text.contains("pid"))
    });
    let holder = std::fs::read_to_string(&lock).unwrap();
    assert!(
        holder.contains(&format!("pid {} ", first.id())) && holder.starts_with("host "),
        "{holder}"
    );
    let args = ["--set", "epochs=50", "--resume"];
    let second = run(train(&config, &data, &out, &args));
    assert!(!second.status.success());
    let message = stderr(&second);
    assert!(
        message.contains(&format!("pid {} ", first.id())),
        "{message}"
    );
    // What the old PID-file lock took for stale: another host, a PID that does not exist here.
    std::fs::write(&lock, "host node-b pid 2147483646 started 0\n").unwrap();
    let third = run(train(&config, &data, &out, &args));
    assert!(
        !third.status.success(),
        "the live holder's OS lock still counts"
    );
    let message = stderr(&third);
    assert!(
        message.contains("in use by host node-b pid 2147483646"),
        "{message}"
    );

    first.kill().unwrap(); // SIGKILL: no cleanup runs
    first.wait().unwrap();
    let resumed = run(train(
        &config,
        &data,
        &out,
        &["--set", "epochs=1", "--resume"],
    ));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        mirrorburn::rundir::RunLock::acquire(&out).is_ok(),
        "released at exit"
    );
}

/// The epoch whose model `pruning.csv` pruned: the one whose validation loss in `metrics.csv`
/// equals the unpruned (sparsity 0, layer-wise) row's, which must be unique.
fn pruned_epoch(run_dir: &Path) -> usize {
    let pruning = read(&run_dir.join("pruning.csv"));
    let unpruned_loss = pruning
        .lines()
        .find(|l| l.starts_with("0,layer,"))
        .unwrap_or_else(|| panic!("no unpruned row: {pruning}"))
        .split(',')
        .nth(3)
        .unwrap()
        .to_string();
    let metrics = read(&run_dir.join("metrics.csv"));
    let epochs: Vec<usize> = metrics
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(3) == Some(unpruned_loss.as_str()))
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(epochs.len(), 1, "val loss {unpruned_loss} in {metrics}");
    epochs[0]
}

/// `prune` prunes the weights at the end of training by default and `best-model.bpk` with
/// `--checkpoint best`, as its help says. The run's best model is set to its epoch-1 weights
/// (kept from a 1-epoch run that the 6-epoch run resumes), so best and last differ whatever the
/// training dynamics on this CPU.
#[test]
fn prune_prunes_the_last_checkpoint_by_default_and_the_best_when_asked() {
    let root = setup("prune-choice");
    let (data, config) = (root.join("data"), root.join("config.toml"));
    let out = root.join("run");
    let first = run(train(&config, &data, &out, &["--set", "epochs=1"]));
    assert!(first.status.success(), "{}", stderr(&first));
    let epoch_one = std::fs::read(out.join("checkpoints/model-epoch00001.bpk")).unwrap();
    let rest = run(train(&config, &data, &out, &["--resume"]));
    assert!(rest.status.success(), "{}", stderr(&rest));
    std::fs::write(out.join("checkpoints/best-model.bpk"), epoch_one).unwrap();
    let last = summary(&out).epochs_completed;
    assert_eq!(last, 6);
    let prune = |extra: &[&str]| {
        let output = run({
            let mut command = binary();
            command
                .args(["prune", "--sparsities", "0,0.5", "--run"])
                .arg(&out)
                .arg("--data-dir")
                .arg(&data)
                .args(extra);
            command
        });
        assert!(output.status.success(), "{}", stderr(&output));
        pruned_epoch(&out)
    };
    assert_eq!(prune(&[]), last, "default: the last checkpoint");
    assert_eq!(
        prune(&["--checkpoint", "best"]),
        1,
        "--checkpoint best: best-model.bpk"
    );
    assert_eq!(prune(&["--checkpoint", "last"]), last);
}

fn compare(configs: &[&Path], data: &Path, out: &Path, extra: &[&str]) -> Command {
    let leading = [Path::new("compare"), Path::new("--configs")];
    mirrorburn_command(leading.iter().chain(configs), data, out, extra)
}

/// SIGTERM to `compare` while it trains checkpoints the run after the current batch, marks it
/// `interrupted` and exits non-zero; the same command then continues exactly (same metrics,
/// weights and pruning curves as an uninterrupted `compare`). `compare` prunes each run's last
/// checkpoint.
#[test]
fn sigterm_to_compare_checkpoints_and_the_same_command_continues_exactly() {
    let root = setup("compare-sigterm");
    let (data, first) = (root.join("data"), root.join("config.toml"));
    let second = root.join("second.toml");
    std::fs::write(&second, tiny_config("cli-test-b", 8, 6)).unwrap();
    let configs = [first.as_path(), second.as_path()];
    let args = ["--set", "epochs=10", "--set", "batch_size=5"];
    let straight = root.join("straight");
    let output = run(compare(&configs, &data, &straight, &args));
    assert!(output.status.success(), "{}", stderr(&output));

    let stopped = root.join("stopped");
    let first_run = stopped.join("runs/cli-test");
    let output =
        sigterm_after_first_checkpoint(compare(&configs, &data, &stopped, &args), &first_run);
    assert!(
        !output.status.success(),
        "an interrupted compare exits non-zero"
    );
    let message = stderr(&output);
    assert!(
        message.contains("run the same compare command again"),
        "{message}"
    );
    assert_eq!(summary(&first_run).status, RunStatus::Interrupted);
    assert!(
        !stopped.join("runs/cli-test-b").exists(),
        "stopped before the next run"
    );

    let output = run(compare(&configs, &data, &stopped, &args));
    assert!(output.status.success(), "{}", stderr(&output));
    for name in ["cli-test", "cli-test-b"] {
        let (a, b) = (
            stopped.join("runs").join(name),
            straight.join("runs").join(name),
        );
        assert_eq!(summary(&a).status, RunStatus::Completed);
        assert_eq!(
            deterministic_metrics(&a),
            deterministic_metrics(&b),
            "{name}"
        );
        assert_same_weights(
            &a,
            &b,
            &format!("{name} after SIGTERM and the same compare"),
        );
        assert_eq!(
            read(&a.join("pruning.csv")),
            read(&b.join("pruning.csv")),
            "{name}"
        );
        assert_eq!(
            pruned_epoch(&a),
            10,
            "{name}: compare prunes the last checkpoint"
        );
    }
    assert!(stopped.join("report/report.md").is_file());
}

#[test]
fn sigterm_checkpoints_mid_epoch_and_resume_is_exact() {
    let root = setup("sigterm");
    let (data, config) = (root.join("data"), root.join("config.toml"));
    // Small batches: many steps per epoch, so the signal lands mid-epoch; 10 epochs, so the run
    // cannot finish in the 300 ms between its first checkpoint and the signal (with 3 it
    // sometimes did on a fast step).
    let args = ["--set", "epochs=10", "--set", "batch_size=5"];
    let straight = root.join("straight");
    let output = run(train(&config, &data, &straight, &args));
    assert!(output.status.success(), "{}", stderr(&output));

    let stopped = root.join("stopped");
    let output = sigterm_after_first_checkpoint(train(&config, &data, &stopped, &args), &stopped);
    assert!(
        !output.status.success(),
        "an interrupted run exits non-zero"
    );
    assert!(stderr(&output).contains("--resume"), "{}", stderr(&output));
    assert_eq!(summary(&stopped).status, RunStatus::Interrupted);
    let index: CheckpointIndex =
        serde_json::from_slice(&std::fs::read(stopped.join("checkpoint.json")).unwrap()).unwrap();
    let partial = index.latest.partial.expect("a mid-epoch checkpoint");
    assert!(partial.batches > 0);

    let output = run(train(
        &config,
        &data,
        &stopped,
        &[&args[..], &["--resume"]].concat(),
    ));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(summary(&stopped).status, RunStatus::Completed);
    assert_eq!(
        deterministic_metrics(&stopped),
        deterministic_metrics(&straight)
    );
    assert_same_weights(&stopped, &straight, "after a graceful stop and --resume");
}

/// Starts `command`, sends it SIGTERM 300 ms after `run_dir` holds its first epoch checkpoint,
/// and returns how it ended. The signal comes twice, 1 ms apart: `timeout` sends it to the
/// process and then to its process group, and the copy must not end the graceful stop.
fn sigterm_after_first_checkpoint(mut command: Command, run_dir: &Path) -> Output {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(&mut child, "the first checkpoint", || {
        read_checkpoint_epoch(run_dir).is_some_and(|e| e >= 1)
    });
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..2 {
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        std::thread::sleep(Duration::from_millis(1));
    }
    child.wait_with_output().unwrap()
}

fn read_checkpoint_epoch(out: &Path) -> Option<usize> {
    let bytes = std::fs::read(out.join("checkpoint.json")).ok()?;
    serde_json::from_slice::<CheckpointIndex>(&bytes)
        .ok()
        .map(|c| c.latest.epoch)
}

/// A fault test's workspace (config with the fault tests' seed, data) and the uninterrupted
/// reference run `straight` in it.
struct Fault {
    root: TempDir,
    seed: u64,
    data: std::path::PathBuf,
    config: std::path::PathBuf,
    straight: std::path::PathBuf,
}

fn fault_setup(label: &str) -> Fault {
    let seed = test_seed(7);
    let root = workspace(label, 40, 40, &tiny_config("fault-test", seed, 6));
    let (data, config) = (root.join("data"), root.join("config.toml"));
    let straight = root.join("straight");
    let output = run(train(&config, &data, &straight, &[]));
    assert!(output.status.success(), "seed {seed}: {}", stderr(&output));
    Fault {
        root,
        seed,
        data,
        config,
        straight,
    }
}

/// Whether a process ended by SIGKILL.
fn killed(output: &Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    output.status.signal() == Some(9)
}

/// SIGKILL after every step of writing a checkpoint (the epoch-3 one, which also removes the
/// epoch-1 files): each crash resumes to the weights and metrics of an uninterrupted run.
#[test]
fn a_crash_at_every_step_of_a_checkpoint_resumes_exactly() {
    let Fault {
        root,
        seed,
        data,
        config,
        straight,
    } = fault_setup("crash-points");
    for step in mirrorburn::rundir::CHECKPOINT_STEPS {
        let out = root.join(format!("crash-{step}"));
        let mut crashing = train(&config, &data, &out, &[]);
        crashing.env(mirrorburn::rundir::CRASH_VARIABLE, format!("{step}@3"));
        let output = run(crashing);
        assert!(
            killed(&output),
            "seed {seed}, {step}: not killed: {}",
            stderr(&output)
        );
        assert_eq!(
            summary(&out).status,
            RunStatus::Running,
            "seed {seed}, {step}"
        );
        let resumed = run(train(&config, &data, &out, &["--resume"]));
        assert!(
            resumed.status.success(),
            "seed {seed}, {step}: {}",
            stderr(&resumed)
        );
        assert_eq!(summary(&out).status, RunStatus::Completed);
        assert_eq!(
            deterministic_metrics(&out),
            deterministic_metrics(&straight),
            "seed {seed}, {step}"
        );
        assert_same_weights(
            &out,
            &straight,
            &format!("after a crash at {step} (seed {seed})"),
        );
        let leftovers: Vec<_> = std::fs::read_dir(out.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.contains("epoch00001") || name.contains(".tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "seed {seed}, {step}: {leftovers:?} left behind"
        );
    }
}

/// Two `train --resume-or-start` on one run directory at once (a Slurm task submitted twice):
/// exactly one trains, the other exits non-zero naming the holder, and the run ends with the
/// weights of a single process.
#[test]
fn duplicate_array_tasks_train_once() {
    let Fault {
        root,
        seed,
        data,
        config,
        straight: single,
    } = fault_setup("duplicate-tasks");
    let out = root.join("twice");
    let spawn = || {
        train(&config, &data, &out, &["--resume-or-start"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "seed {seed}: {}\n{}", stderr(&a), stderr(&b));
    let refused = if a.status.success() { &b } else { &a };
    let message = stderr(refused);
    assert!(
        message.contains("is in use by host"),
        "seed {seed}: {message}"
    );
    assert_eq!(summary(&out).status, RunStatus::Completed);
    assert_eq!(deterministic_metrics(&out), deterministic_metrics(&single));
    assert_same_weights(
        &out,
        &single,
        &format!("after two tasks at once (seed {seed})"),
    );
}

/// Mounts a tmpfs of `bytes` at `dir` (root only); `false` where that is not possible.
fn mount_small_tmpfs(dir: &Path, bytes: usize) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
        .arg(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Checks a run that a failing write stopped (`os_message`, e.g. "No space left on device",
/// with `errno`, e.g. "os error 28"): one error naming the file and the errno, no temporary file
/// left, the run marked `failed` (or said why not), whatever was written before readable; then the
/// directory, copied to `moved`, resumes to the uninterrupted run's metrics and weights.
fn assert_stopped_cleanly_and_resumes(
    fault: &Fault,
    out: &Path,
    moved: &Path,
    output: &Output,
    (os_message, errno): (&str, &str),
    context: &str,
) {
    assert!(!output.status.success(), "{context}: the run fitted");
    let message = stderr(output);
    let failing = message
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    println!("{context}: {failing}");
    assert_eq!(
        message.matches(os_message).count(),
        1,
        "{context}: {message}"
    );
    assert!(
        message.contains(errno) && message.contains("cannot write"),
        "{context}: {message}"
    );
    let temporaries: Vec<String> = [out.to_path_buf(), out.join("checkpoints")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(".tmp"))
        .collect();
    assert!(
        temporaries.is_empty(),
        "{context}: {temporaries:?} left behind"
    );
    // `failed` with the error where summary.json could still be written; else said so.
    let after = summary(out);
    match after.status {
        RunStatus::Failed => assert!(
            after.error.as_deref().is_some_and(|e| e.contains(errno)),
            "{context}"
        ),
        RunStatus::Running => assert!(
            message.contains("summary.json could not be updated to `failed` either"),
            "{context}: {message}"
        ),
        other => panic!("{context}: status {other:?}"),
    }
    // Whatever was written before is readable: the checkpoint (if the failure came after the
    // first one) and the metrics rows (if any).
    let epoch = read_checkpoint_epoch(out);
    assert!(
        epoch.is_none_or(|e| (1..6).contains(&e)),
        "{context}: {epoch:?}"
    );
    if out.join("metrics.csv").exists() {
        assert!(
            !deterministic_metrics(out).is_empty(),
            "{context}: metrics.csv"
        );
    }
    let copied = Command::new("cp")
        .arg("-a")
        .arg(out)
        .arg(moved)
        .output()
        .unwrap();
    assert!(copied.status.success());
    let resumed = run(train(&fault.config, &fault.data, moved, &["--resume"]));
    assert!(resumed.status.success(), "{context}: {}", stderr(&resumed));
    assert_eq!(
        deterministic_metrics(moved),
        deterministic_metrics(&fault.straight),
        "{context}"
    );
    assert_same_weights(moved, &fault.straight, &format!("after {context}"));
}

/// Training into a filesystem that fills up stops cleanly and resumes exactly from a copy
/// (see [`assert_stopped_cleanly_and_resumes`]). Runs as root (a size-limited tmpfs, as in CI);
/// elsewhere it says why it cannot and returns (the file-size-limit test below runs anywhere).
#[test]
fn a_full_disk_stops_the_run_cleanly_and_resume_continues_exactly() {
    let fault = fault_setup("disk-full");
    let checkpoint = std::fs::metadata(fault.straight.join("checkpoints/best-model.bpk"))
        .unwrap()
        .len() as usize;
    // Room for 2.5 to 5 checkpoints of this run, never for the whole run: the disk fills at
    // different writes (a checkpoint, best-model, an append, summary.json).
    for (point, room) in [5, 6, 7, 8, 9, 10].into_iter().enumerate() {
        let small = fault.root.join(format!("small{point}"));
        if !mount_small_tmpfs(&small, room * checkpoint / 2) {
            eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
            return;
        }
        let _unmount = Unmount(&small);
        let out = small.join("run");
        let output = run(train(&fault.config, &fault.data, &out, &[]));
        assert_stopped_cleanly_and_resumes(
            &fault,
            &out,
            &fault.root.join(format!("moved{point}")),
            &output,
            ("No space left on device", "os error 28"),
            &format!("seed {}, full disk at fill point {point}", fault.seed),
        );
    }
}

/// The same under a file-size limit (`RLIMIT_FSIZE`, SIGXFSZ ignored so that the write fails
/// with EFBIG), which needs no privileges: the limits let the checkpoints through and stop the
/// run when an appended file outgrows them.
#[test]
fn a_file_size_limit_stops_the_run_cleanly_and_resume_continues_exactly() {
    use std::os::unix::process::CommandExt;
    let fault = fault_setup("file-size-limit");
    let checkpoint = std::fs::metadata(fault.straight.join("checkpoints/best-model.bpk"))
        .unwrap()
        .len();
    for (point, limit) in [checkpoint + 4096, checkpoint * 3 / 2]
        .into_iter()
        .enumerate()
    {
        let out = fault.root.join(format!("limited{point}"));
        let mut command = train(&fault.config, &fault.data, &out, &[]);
        // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let rlimit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let output = run(command);
        assert_stopped_cleanly_and_resumes(
            &fault,
            &out,
            &fault.root.join(format!("moved{point}")),
            &output,
            ("File too large", "os error 27"),
            &format!("seed {}, file-size limit {limit}", fault.seed),
        );
    }
}

/// Unmounts a directory when dropped.
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).output();
    }
}

/// An error whose message already quotes its cause does not repeat it (it did: "No such file or
/// directory (os error 2): No such file or directory (os error 2)").
#[test]
fn a_missing_config_is_named_with_its_cause_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_mirrorburn"))
        .args(["train", "--config", "/nonexistent/nope.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("/nonexistent/nope.toml"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

/// The renames in an strace log (`-y`) that are not followed by an fsync of the destination's
/// directory before the process's next rename.
fn renames_without_directory_sync(trace: &str) -> (usize, Vec<String>) {
    let lines: Vec<&str> = trace.lines().collect();
    let mut renames = 0;
    let mut unsynced = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(args) = line.split_once("rename(\"").map(|(_, rest)| rest) else {
            continue;
        };
        renames += 1;
        let destination = args.split('"').nth(2).unwrap();
        let dir = Path::new(destination).parent().unwrap();
        let dir = std::fs::canonicalize(dir).unwrap();
        let synced = format!("<{}>)", dir.display());
        let next = lines[i + 1..]
            .iter()
            .take_while(|l| !l.contains("rename("))
            .any(|l| l.contains("fsync(") && l.contains(&synced));
        if !next {
            unsynced.push(destination.to_string());
        }
    }
    (renames, unsynced)
}

/// Every file put in place by renaming (checkpoints, results, figures) has its directory flushed
/// after the rename, so a completed checkpoint survives a power loss. Observed with strace; says
/// "not run" where it is missing, except under `MIRRORBURN_REQUIRE_STRACE` (set by `.ci/run`).
#[test]
fn every_rename_into_place_is_followed_by_a_directory_sync() {
    if Command::new("strace").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("MIRRORBURN_REQUIRE_STRACE").is_none(),
            "MIRRORBURN_REQUIRE_STRACE is set (CI) but strace is not installed"
        );
        println!("not run: strace is not installed");
        return;
    }
    let root = setup("dir-sync");
    let (data, config) = (root.join("data"), root.join("config.toml"));
    let out = root.join("run");
    let traced = |label: &str, args: &mut Command| {
        let log = root.join(format!("{label}.strace"));
        let mut command = Command::new("strace");
        command
            .args([
                "-f",
                "-y",
                "-qq",
                "-e",
                "trace=rename,renameat,renameat2,fsync",
            ])
            .arg("-o")
            .arg(&log)
            .arg(args.get_program())
            .args(args.get_args());
        let output = run(command);
        assert!(output.status.success(), "{label}: {}", stderr(&output));
        read(&log)
    };
    let trace = traced(
        "train",
        &mut train(&config, &data, &out, &["--set", "epochs=2"]),
    );
    let report = traced(
        "report",
        binary()
            .args(["report", "--runs"])
            .arg(&out)
            .arg("--out")
            .arg(root.join("report")),
    );
    for (label, trace) in [("train", trace), ("report", report)] {
        let (renames, unsynced) = renames_without_directory_sync(&trace);
        println!(
            "{label}: {renames} renames into place, {} without a directory sync",
            unsynced.len()
        );
        assert!(renames >= 5, "{label}: {trace}");
        assert!(unsynced.is_empty(), "{label}: {unsynced:?}");
    }
}

/// Resuming a run on a filesystem that has become read-only (EROFS) fails with one error naming
/// the file and the OS error, changes nothing in the run directory, and once the filesystem is
/// writable again `--resume` continues exactly. Runs as root (a tmpfs remounted read-only, as in
/// CI); elsewhere it says why it cannot and returns.
#[test]
fn a_read_only_filesystem_stops_the_run_cleanly_and_resume_continues_exactly() {
    let fault = fault_setup("read-only");
    let mount = fault.root.join("mount");
    if !mount_small_tmpfs(&mount, 64 << 20) {
        eprintln!("not run: mounting a tmpfs needs root (CI runs as root)");
        return;
    }
    let _unmount = Unmount(&mount);
    let out = mount.join("run");
    let first = run(train(
        &fault.config,
        &fault.data,
        &out,
        &["--set", "epochs=3"],
    ));
    assert!(first.status.success(), "{}", stderr(&first));
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
                }
            }
        }
        files.sort();
        files
    };
    let before = snapshot(&out);
    let remount = |mode: &str| {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&mount)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}");
    };
    remount("ro");
    let refused = run(train(&fault.config, &fault.data, &out, &["--resume"]));
    remount("rw");
    assert!(
        !refused.status.success(),
        "a read-only run directory was written"
    );
    let message = stderr(&refused);
    println!("read-only: {message}");
    assert_eq!(
        message.matches("Read-only file system").count(),
        1,
        "{message}"
    );
    assert!(
        message.contains("os error 30") && message.contains(&out.display().to_string()),
        "{message}"
    );
    assert!(snapshot(&out) == before, "the run directory changed");
    let resumed = run(train(&fault.config, &fault.data, &out, &["--resume"]));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(
        deterministic_metrics(&out),
        deterministic_metrics(&fault.straight),
        "seed {}",
        fault.seed
    );
    assert_same_weights(&out, &fault.straight, "after a read-only filesystem");
}
