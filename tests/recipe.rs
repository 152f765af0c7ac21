//! `mirrorburn recipe`: Table 10's recipes at a given sigma, and a configured VGG's expected first
//! update per layer, computed and measured on the initialised weights.

mod common;

use std::process::Command;

fn recipe(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mirrorburn"))
        .arg("recipe")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn cells(line: &str) -> Vec<String> {
    line.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn the_recipes_are_printed_for_the_he_scale_of_a_fan_in() {
    let output = recipe(&["--potential", "hyperbolic", "--fan-in", "576"]);
    common::assert_success(&output, "recipe --potential hyperbolic");
    let text = String::from_utf8(output.stdout).unwrap();
    // sigma = sqrt(2 / 576): (σ^-1, σ^2) = (16.97, 3.47e-3).
    let row = text
        .lines()
        .find(|l| l.contains("(σ^-1, σ^2)"))
        .expect(&text);
    let row = cells(row);
    assert_eq!(
        (row[2].as_str(), row[3].as_str()),
        ("1.697e1", "3.472e-3"),
        "{row:?}"
    );
    // Worked out here from Table 1's unnormalised hyperbolic map m(theta) = sqrt(theta^2 +
    // lambda), not through the optimizer: lr E[m] = E[sqrt(z^2 + lambda / sigma^2)] sigma lr.
    let sigma = (2.0f64 / 576.0).sqrt();
    let by_hand = |lr: f64, lambda: f64| {
        lr * sigma * gaussian_mean(|z| (z * z + lambda / (sigma * sigma)).sqrt())
    };
    let expected = [
        ("(1, 1)", by_hand(1.0, 1.0)),
        ("(σ^-1, σ^2)", by_hand(1.0 / sigma, sigma * sigma)),
        ("(σ^-1, σ^4)", by_hand(1.0 / sigma, sigma.powi(4))),
    ];
    for (recipe, value) in expected {
        let row = text
            .lines()
            .find(|l| l.contains(recipe))
            .map(cells)
            .expect(&text);
        let printed: f64 = row[4].parse().unwrap();
        assert!(
            (printed - value).abs() <= 1e-3 * value,
            "{recipe}: printed {printed}, by hand {value:.4e}"
        );
    }
    // The mirror-μP recipe (σ^-1, σ^2) keeps the expected first update O(1): E[sqrt(z^2 + 1)].
    assert!((1.3..1.4).contains(&expected[1].1), "{expected:?}");
}

/// `E[f(z)]` for `z ~ N(0, 1)`, by Simpson's rule on [-12, 12] (independent of the library's
/// quadrature, which integrates the optimizer's own step).
fn gaussian_mean(f: impl Fn(f64) -> f64) -> f64 {
    let n = 24_000; // even
    let h = 24.0 / n as f64;
    let g = |z: f64| f(z) * (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let inner: f64 = (1..n)
        .map(|i| {
            let z = -12.0 + i as f64 * h;
            if i % 2 == 1 { 4.0 * g(z) } else { 2.0 * g(z) }
        })
        .sum();
    (g(-12.0) + inner + g(12.0)) * h / 3.0
}

#[test]
fn every_layer_of_a_config_gets_its_expected_and_measured_update() {
    let output = recipe(&[
        "--config",
        "configs/quick-p10.toml",
        "--set",
        "optimizer.potential={ kind = \"p_homogeneous\", p = 10.0, lambda = 100.0 }",
    ]);
    common::assert_success(&output, "recipe --config");
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| l.starts_with("| features.") || l.starts_with("| classifier."))
        .map(cells)
        .collect();
    assert_eq!(rows.len(), 14, "{text}");
    // DESIGN.md's fan-in map for p = 10: m = lambda / (|u|^8 + lambda) with u = sqrt(fan-in)
    // theta, which He initialisation makes N(0, 2) in every layer: worked out here by hand.
    let by_hand = gaussian_mean(|z| {
        let u = 2f64.sqrt() * z;
        100.0 / (u.abs().powi(8) + 100.0)
    });
    for row in &rows {
        let printed: f64 = row[4].parse().unwrap();
        assert!(
            (printed - by_hand).abs() <= 1e-3 * by_hand,
            "{row:?}: E[m] by hand {by_hand:.5e}"
        );
        let fan_in: usize = row[1].parse().unwrap();
        let (expected, measured): (f64, f64) = (row[4].parse().unwrap(), row[5].parse().unwrap());
        // The layers hold 216 to 37k weights at width/8: the measured mean is a Monte-Carlo
        // estimate with a few percent of noise on the small ones.
        assert!(
            (expected - measured).abs() < 0.1 * expected,
            "fan-in {fan_in}: {row:?}"
        );
        assert_eq!(row[3], "p10(lambda=100)");
    }
}

#[test]
fn without_a_question_it_says_what_to_ask() {
    let output = recipe(&[]);
    assert!(!output.status.success());
    assert!(common::stderr(&output).contains("--potential gd|hyperbolic|p"));
}
