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
    // A mirror-μP recipe keeps the expected first update O(1).
    let update: f64 = row[4].parse().unwrap();
    assert!((0.3..3.0).contains(&update), "{row:?}");
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
    for row in &rows {
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
