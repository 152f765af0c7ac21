//! `mirrorburn sweep` end to end on generated CIFAR-format data: parallel runs, an interrupted
//! sweep resumed to the same table, refusal of a changed config, and failure isolation.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const BASE: &str = r#"
name = "base"
epochs = 2
batch_size = 20
lr = 0.05
[model]
width_divisor = 32
[data]
download = false
[logging]
margin_images = 40
"#;

fn sweep_file(root: &Path, extra_lr: &str) -> PathBuf {
    std::fs::write(root.join("base.toml"), BASE).unwrap();
    let text = format!(
        r#"
name = "tiny"
base = "base.toml"
[grid]
seed = [1, 2]
lr = [0.05{extra_lr}]
[[methods]]
name = "hyperbolic"
set = {{ "optimizer.potential" = {{ kind = "hyperbolic", lambda = 0.01 }} }}
grid = {{ "optimizer.potential.lambda" = [1e-5, 0.01] }}
"#
    );
    std::fs::write(root.join("sweep.toml"), text).unwrap();
    root.join("sweep.toml")
}

fn sweep(file: &Path, data: &Path, out: &Path, extra: &[&str]) -> Command {
    let leading = [
        Path::new("sweep"),
        Path::new("--jobs"),
        Path::new("2"),
        Path::new("--config"),
        file,
    ];
    mirrorburn_command(leading, data, out, extra)
}

/// The children of `pid` (Linux /proc).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()?
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(pid)
        })
        .collect()
}

#[test]
fn an_interrupted_sweep_resumes_to_the_same_table() {
    let root = temp_dir("sweep");
    let data = write_cifar_dir(&root.join("data"), 40, 40);
    let file = sweep_file(&root, "");

    let straight = root.join("straight");
    let output = sweep(&file, &data, &straight, &[]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let table = std::fs::read_to_string(straight.join("table9.md")).unwrap();
    assert_eq!(table.matches("| 2/2 |").count(), 2, "{table}");
    assert!(straight.join("report/report.md").is_file());
    let pruning = std::fs::read_to_string(
        straight
            .join("runs")
            .join(best_run(&straight))
            .join("pruning.csv"),
    )
    .unwrap();
    assert!(
        pruning.contains(",layer,") && pruning.contains(",global,"),
        "{pruning}"
    );
    assert!(
        straight
            .join("runs/hyperbolic-lambda1e-5-lr0.05-seed1/train.log")
            .is_file()
    );

    // The same sweep, SIGKILLed with its children once a run has completed, then run again.
    let killed = root.join("killed");
    let mut child = sweep(&file, &data, &killed, &[])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    wait_until(&mut child, "a run completed", || {
        any_completed(&killed.join("runs"))
    });
    let trainers = children(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    for &pid in &trainers {
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    // SIGKILL is asynchronous: wait until the trainers are gone (or zombies).
    for pid in trainers {
        let stat = format!("/proc/{pid}/stat");
        while std::fs::read_to_string(&stat)
            .is_ok_and(|s| !s.rsplit(')').next().unwrap().trim_start().starts_with('Z'))
        {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "trainer {pid} survived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let output = sweep(&file, &data, &killed, &[]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(killed.join("table9.md")).unwrap(),
        table
    );

    // Extended by an epoch, every run resumes; a pruning curve left from epoch 2 is removed and
    // the best setting is pruned again: every pruning.csv evaluates the epoch-3 weights.
    let output = sweep(&file, &data, &straight, &["--set", "epochs=3"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let best = best_run(&straight);
    for entry in std::fs::read_dir(straight.join("runs")).unwrap() {
        let run = mirrorburn::rundir::RunDir::new(entry.unwrap().path());
        let metrics = run.read_metrics().unwrap();
        assert_eq!(metrics.len(), 3);
        let Some(rows) = run.read_pruning().unwrap() else {
            assert!(!run.root().ends_with(&best), "best run {best} not pruned");
            continue;
        };
        let unpruned = rows.iter().find(|row| row.sparsity == 0.0).unwrap();
        let (epoch2, epoch3) = (metrics[1].val_loss, metrics[2].val_loss);
        assert!(
            (unpruned.val_loss - epoch3).abs() < 1e-4 * epoch3
                && (unpruned.val_loss - epoch2).abs() > 1e-4 * epoch2,
            "{}: unpruned val loss {} vs epoch 2 {epoch2}, epoch 3 {epoch3}",
            run.root().display(),
            unpruned.val_loss
        );
    }

    // A changed config under the same run names is refused, naming the key.
    let output = sweep(&file, &data, &killed, &["--set", "batch_size=10"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("`batch_size`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_diverging_run_is_marked_and_the_sweep_goes_on() {
    let root = temp_dir("sweep-diverge");
    let data = write_cifar_dir(&root.join("data"), 40, 40);
    let file = sweep_file(&root, ", 1e12");
    let out = root.join("out");
    let output = sweep(&file, &data, &out, &["--set", "epochs=1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let table = std::fs::read_to_string(out.join("table9.md")).unwrap();
    let diverged: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("lr=1000000000000.0"))
        .collect();
    assert_eq!(diverged.len(), 2, "{table}");
    assert!(
        diverged.iter().all(|l| l.contains("| 0/2 | **2** |")),
        "{table}"
    );
    assert_eq!(table.matches("| 2/2 |").count(), 2, "{table}");
}

fn any_completed(runs: &Path) -> bool {
    std::fs::read_dir(runs).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            std::fs::read_to_string(e.path().join("summary.json"))
                .is_ok_and(|s| s.contains("\"completed\""))
        })
    })
}

fn best_run(out: &Path) -> String {
    let csv = std::fs::read_to_string(out.join("table9.csv")).unwrap();
    let best = csv.lines().find(|l| l.contains(",true,")).unwrap();
    best.rsplit(',')
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn slurm_emission_maps_each_array_index_to_its_run() {
    let root = temp_dir("sweep-slurm");
    let data = write_cifar_dir(&root.join("data"), 4, 4);
    let file = sweep_file(&root, ", 0.1");
    let out = root.join("out");
    let output = sweep(
        &file,
        &data,
        &out,
        &["--emit", "slurm", "--set", "epochs=1"],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let slurm = out.join("slurm");
    for script in ["sweep.sbatch", "aggregate.sbatch", "submit.sh"] {
        let check = Command::new("bash")
            .arg("-n")
            .arg(slurm.join(script))
            .output()
            .unwrap();
        assert!(check.status.success(), "{script}: {}", stderr(&check));
    }
    let array = std::fs::read_to_string(slurm.join("sweep.sbatch")).unwrap();
    assert!(
        array.contains("#SBATCH --array=0-7%2"),
        "8 runs, 2 at a time: {array}"
    );
    assert!(
        array.contains("--signal=B:TERM@") && array.contains("--requeue"),
        "{array}"
    );
    assert!(array.contains("--resume-or-start"), "{array}");
    let aggregate = std::fs::read_to_string(slurm.join("aggregate.sbatch")).unwrap();
    assert!(
        aggregate.contains("--aggregate-only") && aggregate.contains("'epochs=1'"),
        "{aggregate}"
    );
    // Each index's line names the run, its resolved config and its directory.
    let tasks = std::fs::read_to_string(slurm.join("tasks.tsv")).unwrap();
    assert_eq!(tasks.lines().count(), 8);
    for line in tasks.lines() {
        let cells: Vec<&str> = line.split('\t').collect();
        let config = mirrorburn::config::TrainConfig::load(Path::new(cells[1]), &[]).unwrap();
        assert_eq!(config.name, cells[0]);
        assert_eq!(config.epochs, 1);
        assert!(cells[2].ends_with(&format!("runs/{}", cells[0])), "{line}");
        let lr = cells[0]
            .split("-lr")
            .nth(1)
            .unwrap()
            .split('-')
            .next()
            .unwrap();
        assert_eq!(config.lr.to_string(), lr, "{line}");
    }
    // The array task's own lookup resolves index 5 to line 6.
    let lookup = format!(
        "SLURM_ARRAY_TASK_ID=5; IFS=$'\\t' read -r name config run < <(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" '{}'); echo $name",
        slurm.join("tasks.tsv").display()
    );
    let name = Command::new("bash").arg("-c").arg(lookup).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&name.stdout).trim(),
        tasks.lines().nth(5).unwrap().split('\t').next().unwrap()
    );
}

#[test]
fn sigterm_to_the_sweep_checkpoints_its_trainings_and_says_how_to_resume() {
    let root = temp_dir("sweep-sigterm");
    let data = write_cifar_dir(&root.join("data"), 40, 40);
    let file = sweep_file(&root, "");
    let out = root.join("out");
    let slow = ["--set", "epochs=30", "--set", "batch_size=5"];
    let mut child = sweep(&file, &data, &out, &slow)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until both trainings have written a checkpoint.
    wait_until(&mut child, "two checkpoints", || {
        std::fs::read_dir(out.join("runs")).is_ok_and(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().join("checkpoint.json").exists())
                .count()
                >= 2
        })
    });
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("interrupted") && message.contains("resume with"),
        "{message}"
    );
    let interrupted = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_to_string(e.path().join("summary.json"))
                .is_ok_and(|s| s.contains("\"interrupted\""))
        })
        .count();
    assert_eq!(
        interrupted, 2,
        "both running trainings checkpointed and stopped"
    );
}

/// A run whose training stops before writing its summary (here: a lambda whose constants f32
/// cannot hold, refused when the optimizer is built) is counted as failed, with its error, and
/// the sweep exits with status 3 after writing the table; the run that could train completes.
#[test]
fn a_run_failing_before_its_summary_is_counted_failed_and_the_sweep_exits_3() {
    let root = temp_dir("sweep-fail-early");
    let data = write_cifar_dir(&root.join("data"), 40, 40);
    std::fs::write(root.join("base.toml"), BASE).unwrap();
    std::fs::write(
        root.join("sweep.toml"),
        r#"
name = "early"
base = "base.toml"
set = { epochs = 1 }
[[methods]]
name = "hyperbolic"
set = { "optimizer.potential" = { kind = "hyperbolic", lambda = 0.01 } }
grid = { "optimizer.potential.lambda" = [0.01, 1e-40] }
"#,
    )
    .unwrap();
    let out = root.join("out");
    let output = sweep(&root.join("sweep.toml"), &data, &out, &[])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("1 run(s) failed and 0 were not run"), "{err}");
    assert!(
        err.contains("stopped before writing summary.json")
            && err.contains("cannot be computed in f32"),
        "{err}"
    );
    let table = std::fs::read_to_string(out.join("table9.md")).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.contains("| 0/1 |") && l.trim_end().ends_with("| **1** |")),
        "the failed setting is counted: {table}"
    );
    assert_eq!(table.matches("| 1/1 |").count(), 1, "{table}");
}

/// Processes whose command line mentions `path` (Linux /proc).
fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let line = String::from_utf8_lossy(&line).replace('\0', " ");
            line.contains(&needle).then_some(line)
        })
        .collect()
}

/// When a run cannot be started (here its `train.log` is a directory), the sweep stops the
/// trainings it already started and waits for them before it exits with the error: none keeps
/// writing its run directory after the sweep is gone.
#[test]
fn a_run_that_cannot_be_started_stops_the_running_ones_before_the_sweep_exits() {
    let root = temp_dir("sweep-spawn-fail");
    let data = write_cifar_dir(&root.join("data"), 40, 40);
    std::fs::write(root.join("base.toml"), BASE).unwrap();
    std::fs::write(
        root.join("sweep.toml"),
        "name = \"spawnfail\"\nbase = \"base.toml\"\n[grid]\nseed = [1, 2]\n\
         [[methods]]\nname = \"gd\"\n",
    )
    .unwrap();
    let out = root.join("out");
    std::fs::create_dir_all(out.join("runs/gd-seed2/train.log")).unwrap();
    let output = sweep(
        &root.join("sweep.toml"),
        &data,
        &out,
        &["--set", "epochs=200", "--set", "batch_size=5"],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("train gd-seed2") && message.contains("1 running trainings were asked"),
        "{message}"
    );
    let left = processes_mentioning(&out);
    assert!(
        left.is_empty(),
        "still running after the sweep exited: {left:?}"
    );
}

/// `--retry-failed` starts a diverged run over from epoch 0 (resuming would replay its last
/// checkpoint into the same divergence) and keeps the diverged directory beside it.
#[test]
fn retry_failed_starts_a_diverged_run_over_and_keeps_the_old_directory() {
    let root = temp_dir("sweep-retry-diverged");
    let data = write_cifar_dir(&root.join("data"), 40, 40);
    std::fs::write(root.join("base.toml"), BASE).unwrap();
    std::fs::write(
        root.join("sweep.toml"),
        "name = \"retry\"\nbase = \"base.toml\"\nset = { epochs = 1, lr = 1e12, seed = 1 }\n\
         [[methods]]\nname = \"hyp\"\n\
         set = { \"optimizer.potential\" = { kind = \"hyperbolic\", lambda = 1e-5 } }\n",
    )
    .unwrap();
    let out = root.join("out");
    let run = out.join("runs/hyp");
    let first = sweep(&root.join("sweep.toml"), &data, &out, &[])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    let first_log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(
        std::fs::read_to_string(run.join("summary.json"))
            .unwrap()
            .contains("\"diverged\""),
        "{first_log}"
    );
    let again = sweep(&root.join("sweep.toml"), &data, &out, &["--retry-failed"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let kept = out.join("runs/hyp.diverged-1");
    assert_eq!(
        std::fs::read_to_string(kept.join("train.log")).unwrap(),
        first_log,
        "the first attempt's directory is kept as it was"
    );
    let second_log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert_eq!(
        without_speeds(&second_log),
        without_speeds(&first_log),
        "the rerun trained from the start (on flex it diverges again, step for step)"
    );
}

/// `log` without its throughput figures (the words before `img/s`), which vary between runs.
fn without_speeds(log: &str) -> String {
    let words: Vec<&str> = log.split(' ').collect();
    words
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            words
                .get(i + 1)
                .is_none_or(|next| !next.starts_with("img/s"))
        })
        .map(|(_, word)| *word)
        .collect::<Vec<_>>()
        .join(" ")
}
