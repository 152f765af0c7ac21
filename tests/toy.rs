//! The student-teacher experiment reproduces the paper's qualitative findings on a reduced but
//! honest configuration: the 2-layer setting of `configs/toy-2layer.toml` (the hyperbolic step at
//! 0.01) on its first two seeds (each run to L < 1e-50 with time rescaling), checked seed by seed.
//!
//! Not tested, because it does not hold at L = 1e-50 (issue 20): "GD has the largest L2 margin".
//! On the two-class problem (problem seed 0 after 2 teacher redraws: 121 / 79 points) the p = 3
//! map ends with an L2 margin ~28% above GD's on every seed (5.34e-3 vs 4.17e-3 means over 6
//! seeds; see artifacts/reference/toy/toy-2layer/tables.md).

mod common;

use std::path::Path;

use common::{temp_dir, test_seed};
use mirrorburn::optim::StepForm;
use mirrorburn::toy::{ToyConfig, ToyMethod, ToyRun, run, student_weights};

fn config(file: &str) -> ToyConfig {
    ToyConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(file),
    )
    .unwrap()
}

/// Runs every method of `config` on `seed`, in parallel.
fn runs(config: &ToyConfig, seed: u64) -> Vec<(String, ToyRun)> {
    let problem = config.problem_for(seed).unwrap();
    let problem = &problem;
    std::thread::scope(|scope| {
        let handles: Vec<_> = config
            .methods
            .iter()
            .map(|m| {
                scope.spawn(move || {
                    (
                        m.name.clone(),
                        run(config, m, seed, config.rescale_c[0], problem),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn get<'a>(runs: &'a [(String, ToyRun)], name: &str) -> &'a ToyRun {
    &runs.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn each_map_maximises_its_own_margin_and_sets_the_sparsity() {
    // Table 2's protocol with the hyperbolic step at 0.01 (configs/toy-2layer-hyperbolic-eta0.01.toml;
    // the paper's 0.001 takes ten times the steps), GD and p = 3 at configs/toy-2layer.toml's.
    let mut config = config("toy-2layer.toml");
    for method in &mut config.methods {
        if method.name == "hyperbolic" {
            method.lr = 0.01;
        }
    }
    for seed in [0, 1] {
        let results = runs(&config, seed);
        let (hyp, gd, p3) = (
            get(&results, "hyperbolic"),
            get(&results, "gd"),
            get(&results, "p3"),
        );
        for r in [hyp, gd, p3] {
            assert!(
                !r.diverged && r.log10_final_loss < -50.0,
                "seed {seed}: {} steps, log10 L {}",
                r.steps,
                r.log10_final_loss
            );
        }
        // L1 margin: hyperbolic largest.
        assert!(
            hyp.gamma[0] > gd.gamma[0] && hyp.gamma[0] > p3.gamma[0],
            "seed {seed}: L1 {:?} {:?} {:?}",
            hyp.gamma,
            gd.gamma,
            p3.gamma
        );
        // L3 margin: p = 3 largest.
        assert!(
            p3.gamma[2] > gd.gamma[2] && p3.gamma[2] > hyp.gamma[2],
            "seed {seed}: L3 {:?} {:?} {:?}",
            hyp.gamma,
            gd.gamma,
            p3.gamma
        );
        // Sparse vs dense: hyperbolic fewest active neurons, p = 3 the most.
        assert!(
            hyp.active_neurons < gd.active_neurons && gd.active_neurons <= p3.active_neurons,
            "seed {seed}: active neurons hyperbolic {}, gd {}, p3 {}",
            hyp.active_neurons,
            gd.active_neurons,
            p3.active_neurons
        );
    }
}

/// Distance between the shapes of two input-weight representations (same seed, so the same
/// initial neurons), each normalised by its total size `sum_j |r_j|`: the representation is a
/// direction, and a smaller step (large lambda shrinks the p = 3 metric) only changes its scale.
fn distance(r: &ToyRun, s: &ToyRun) -> f64 {
    let size = |x: &ToyRun| {
        x.representation
            .iter()
            .map(|p| p[0].hypot(p[1]))
            .sum::<f64>()
    };
    let (a, b) = (size(r), size(s));
    r.representation
        .iter()
        .zip(&s.representation)
        .map(|(p, q)| (p[0] / a - q[0] / b).hypot(p[1] / a - q[1] / b))
        .sum()
}

#[test]
fn larger_lambda_moves_the_representation_towards_gd() {
    for (file, large, small) in [
        (
            "toy-2layer-lambda-hyperbolic.toml",
            "lambda-1.0",
            "lambda-0.01",
        ),
        ("toy-2layer-lambda-p3.toml", "lambda-10.0", "lambda-0.1"),
    ] {
        let config = config(file);
        for seed in [0, 1] {
            let results = runs(&config, seed);
            let gd = get(&results, "gd");
            let (near, far) = (
                distance(get(&results, large), gd),
                distance(get(&results, small), gd),
            );
            assert!(
                near < far,
                "{file} seed {seed}: distance to GD {near:.3} at {large} vs {far:.3} at {small}"
            );
        }
    }
}

#[test]
fn outputs_are_written_and_every_figure_the_table_names_exists() {
    let mut config = config("toy-2layer-lambda-p3.toml");
    config.seeds = vec![3];
    config.max_steps = 50;
    let results = mirrorburn::toy::run_all(&config, None, &|| false).unwrap();
    let out = temp_dir("toy-out");
    mirrorburn::toy::write_outputs(&results, &out).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        json["methods"].as_array().unwrap().len(),
        config.methods.len()
    );
    assert_eq!(json["methods"][0]["runs"][0]["steps"], 50);
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    let figures: Vec<&str> = tables
        .split("](")
        .skip(1)
        .map(|rest| &rest[..rest.find(')').unwrap()])
        .collect();
    assert_eq!(figures.len(), config.methods.len() + 4, "{tables}");
    for figure in figures {
        assert!(out.join(figure).is_file(), "{figure} is missing");
    }
}

#[test]
fn the_fixed_problem_protocol_shares_teacher_and_data_and_varies_the_student() {
    let mut config = config("toy-2layer.toml");
    let (a, b) = (config.seeds[0], config.seeds[1]);
    let data = |c: &ToyConfig, seed| c.problem_for(seed).unwrap();
    let (pa, pb) = (data(&config, a), data(&config, b));
    assert_eq!(
        (&pa.inputs, &pa.labels),
        (&pb.inputs, &pb.labels),
        "seeds {a}, {b}"
    );
    assert_ne!(
        student_weights(a, 2, config.hidden),
        student_weights(b, 2, config.hidden),
        "the init seeds must draw different students"
    );
    config.max_steps = 3;
    let method = &config.methods[0];
    let (ra, rb) = (
        run(&config, method, a, 0.1, &pa),
        run(&config, method, b, 0.1, &pb),
    );
    assert_eq!(
        (ra.problem_seed, rb.problem_seed),
        (config.problem_seed, config.problem_seed)
    );
    // The previous protocol, kept as an option: each seed draws its own problem.
    config.problem_per_seed = true;
    let (pa, pb) = (data(&config, a), data(&config, b));
    assert_ne!(pa.inputs, pb.inputs, "problem_per_seed redraws the data");
    let pb = data(&config, b);
    assert_eq!(run(&config, method, b, 0.1, &pb).problem_seed, b);
}

/// Largest first-layer difference between the primal and the dual trajectory after `steps`
/// steps of `method` at step size `lr` (no time rescaling).
fn primal_dual_gap(
    config: &ToyConfig,
    method: &ToyMethod,
    seed: u64,
    steps: usize,
    lr: f64,
) -> f64 {
    let mut config = config.clone();
    config.max_steps = steps;
    config.time_rescaling = false;
    config.loss_target = 1e-300;
    let trajectory = |step: StepForm| {
        let method = ToyMethod {
            step,
            lr,
            ..method.clone()
        };
        let r = run(
            &config,
            &method,
            seed,
            0.1,
            &config.problem_for(seed).unwrap(),
        );
        assert_eq!(r.steps, steps, "{} stopped early", method.name);
        r.first_layer
    };
    let (primal, dual) = (trajectory(StepForm::Primal), trajectory(StepForm::Dual));
    // NaN-proof: a non-finite trajectory is an infinite gap, never 0.
    mirrorburn::closeness::Closeness::between(&primal, &dual).max_abs_difference()
}

#[test]
fn dual_and_primal_trajectories_converge_to_each_other_as_the_step_shrinks() {
    let config = config("toy-2layer.toml");
    let seed = test_seed(0);
    let steps = 3;
    // Base steps 0.01 (hyperbolic) and 0.1 (p = 3): at larger steps p = 3's kink at 0, which
    // weights cross, keeps the ratio away from its limit (at 0.3, toy-2layer.toml's, 1.6).
    for (name, base) in [("hyperbolic", 0.01), ("p3", 0.1)] {
        let method = config.methods.iter().find(|m| m.name == name).unwrap();
        // Each step adds an O(lr^2) gap, so over a fixed time (steps * lr = 3 / 16 of the base
        // step, 48 to 192 steps) the trajectories differ by O(lr): halving lr (and doubling the
        // steps) halves the gap.
        let gaps: Vec<f64> = [16, 32, 64]
            .map(|f| primal_dual_gap(&config, method, seed, f * steps, base / f as f64))
            .to_vec();
        for pair in gaps.windows(2) {
            let ratio = pair[0] / pair[1];
            assert!(
                (1.8..=2.2).contains(&ratio),
                "seed {seed} {}: gaps {gaps:?} (ratio {ratio})",
                method.name
            );
        }
    }
}

#[test]
fn a_method_whose_runs_all_diverged_is_tabled_and_the_others_are_drawn() {
    let mut config = config("toy-2layer-lambda-p3.toml");
    config.seeds = vec![1];
    config.max_steps = 20;
    // p = 3 at lambda 0.1 has m(0) = 10: at eta 1 it diverges within a few steps.
    config
        .methods
        .retain(|m| m.name == "lambda-0.1" || m.name == "gd");
    config.methods[0].lr = 1.0;
    let results = mirrorburn::toy::run_all(&config, None, &|| false).unwrap();
    assert!(results.methods[0].runs.iter().all(|r| r.diverged));
    let out = temp_dir("toy-diverged");
    mirrorburn::toy::write_outputs(&results, &out).unwrap();
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    assert!(tables.contains("| all 1 diverged |"), "{tables}");
    assert!(out.join("representation_gd.png").is_file());
    assert!(!out.join("representation_lambda-0.1.png").exists());
}

/// SIGTERM to `mirrorburn toy` abandons the runs in progress and exits non-zero, naming how many
/// finished; the same command then reuses those and writes the results of an uninterrupted call.
#[test]
fn sigterm_to_toy_keeps_the_finished_runs_and_the_same_command_completes_the_study() {
    let root = temp_dir("toy-sigterm");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/toy-2layer.toml"),
    )
    .unwrap()
    .replace("seeds = [0, 1, 2, 3, 4, 5]", "seeds = [0, 1, 2]")
    .replace("max_steps = 3000000", "max_steps = 60000");
    let file = root.join("toy.toml");
    std::fs::write(&file, text).unwrap();
    let toy = |out: &Path| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mirrorburn"));
        command
            .arg("toy")
            .arg("--config")
            .arg(&file)
            .arg("--out")
            .arg(out);
        command
    };
    let straight = root.join("straight");
    let output = toy(&straight).output().unwrap();
    common::assert_success(&output, "uninterrupted toy");

    let stopped = root.join("stopped");
    let mut child = toy(&stopped)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until(&mut child, "a stored run", || {
        std::fs::read_dir(stopped.join("runs")).is_ok_and(|mut d| d.next().is_some())
    });
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    let message = common::stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("runs finished") && message.contains("run the same command again"),
        "{message}"
    );
    assert!(
        !stopped.join("results.json").exists(),
        "no results from a partial study"
    );

    let output = toy(&stopped).output().unwrap();
    common::assert_success(&output, "toy after SIGTERM");
    assert!(String::from_utf8_lossy(&output.stdout).contains("(stored run)"));
    assert_eq!(
        std::fs::read(stopped.join("results.json")).unwrap(),
        std::fs::read(straight.join("results.json")).unwrap()
    );
}
