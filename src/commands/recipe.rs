//! `mirrorburn recipe`: the paper's mirror-μP recipes (Table 10) for an initialisation scale, and
//! the expected first update `E[lr m(theta_0)]` of every layer of a configured VGG at He
//! initialisation, computed and measured on the initialised weights.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::bail;
use burn::tensor::Device;

use crate::config::TrainConfig;
use crate::diagnostics::weight_layers;
use crate::model::Vgg;
use crate::optim::{
    MirrorMap, Potential, RecipePotential, WidthScaling, expected_inverse_metric, fan_in,
    inverse_metric_at, table10,
};

/// Potentials of `--potential`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RecipeKind {
    /// Gradient descent.
    Gd,
    /// The hyperbolic entropy.
    Hyperbolic,
    /// The smoothed p-homogeneous potential (with `--p`).
    P,
}

/// `mirrorburn recipe` arguments.
#[derive(clap::Args, Debug)]
pub struct RecipeArgs {
    /// Print Table 10's (lr, lambda) recipes for this potential.
    #[arg(long, value_enum)]
    pub potential: Option<RecipeKind>,
    /// The initialisation scale sigma (theta_0 ~ N(0, sigma^2)) of the recipes [default: He's
    /// sqrt(2 / fan-in) with --fan-in, else sqrt(2), the scale of u = sqrt(fan-in) theta that our
    /// fan-in scaling uses].
    #[arg(long)]
    pub sigma: Option<f64>,
    /// p of `--potential p`.
    #[arg(long, default_value_t = 10.0)]
    pub p: f64,
    /// Fan-in of the layer the recipes are for (sets sigma to He's sqrt(2 / fan-in)).
    #[arg(long)]
    pub fan_in: Option<usize>,
    /// A train config: the expected first update of each of its VGG's layers.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Config overrides, `key=value` (as `train --set`).
    #[arg(long = "set")]
    pub overrides: Vec<String>,
}

/// Prints the recipes and/or the per-layer expectations.
pub fn execute(args: &RecipeArgs) -> anyhow::Result<()> {
    if args.potential.is_none() && args.config.is_none() {
        bail!(
            "nothing to print: give `--potential gd|hyperbolic|p [--sigma S | --fan-in W]` for \
             Table 10's recipes and/or `--config FILE` for a configured VGG's expected first update"
        );
    }
    if let Some(kind) = args.potential {
        print!("{}", recipes(args, kind)?);
    }
    if let Some(path) = &args.config {
        let config = TrainConfig::load(path, &args.overrides)?;
        print!("{}", layer_updates(&config));
    }
    Ok(())
}

/// Table 10 at the chosen sigma, with the expected update `lr E[m(theta_0)]` of each recipe under
/// the unnormalised (Table 1) potential it is stated for.
fn recipes(args: &RecipeArgs, kind: RecipeKind) -> anyhow::Result<String> {
    let sigma = match (args.sigma, args.fan_in) {
        (Some(sigma), _) => sigma,
        (None, Some(w)) => (2.0 / w as f64).sqrt(),
        (None, None) => 2f64.sqrt(),
    };
    if !(sigma.is_finite() && sigma > 0.0) {
        bail!("--sigma must be a finite number > 0, got {sigma}");
    }
    if kind == RecipeKind::P && !(args.p.is_finite() && args.p > 2.0) {
        bail!(
            "--p must be a finite number > 2 (Table 10's p-homogeneous rows), got {}",
            args.p
        );
    }
    let potential = match kind {
        RecipeKind::Gd => RecipePotential::Gd,
        RecipeKind::Hyperbolic => RecipePotential::Hyperbolic,
        RecipeKind::P => RecipePotential::PHomogeneous { p: args.p },
    };
    let mut md = format!(
        "Table 10 (mirror-μP), {potential:?}, sigma = {sigma:.4e}: (lr, lambda) and the expected first update lr E[m(theta_0)] of the unnormalised potential, theta_0 ~ N(0, sigma^2) (GD's is lr)\n\n| regime | recipe | lr | lambda | lr E[m(theta_0)] |\n|---|---|---:|---:|---:|\n"
    );
    for recipe in table10(potential, sigma) {
        for (symbolic, &(lr, lambda)) in recipe.symbolic.iter().zip(&recipe.values) {
            let map = match (kind, lambda) {
                (RecipeKind::Gd, _) => Some(Potential::Gd),
                (_, Some(l)) if l > 0.0 => Some(match kind {
                    RecipeKind::Hyperbolic => Potential::Hyperbolic { lambda: l },
                    _ => Potential::PHomogeneous {
                        p: args.p,
                        lambda: l,
                    },
                }),
                _ => None, // lambda = 0: the limit, outside our potentials (lambda > 0)
            }
            .map(|p| MirrorMap::new(p, WidthScaling::None, 1));
            let update = map.map_or("- (lambda = 0 is a limit)".to_string(), |map| {
                format!("{:.3e}", lr * expected_inverse_metric(&map, sigma))
            });
            let lambda = lambda.map_or("-".to_string(), |l| format!("{l:.3e}"));
            let _ = writeln!(
                md,
                "| {} | {symbolic} | {lr:.3e} | {lambda} | {update} |",
                recipe.regime
            );
        }
    }
    md.push('\n');
    Ok(md)
}

/// Per weight layer of the config's VGG at He initialisation: fan-in, sigma, the potential, the
/// expected `E[m(theta_0)]` (quadrature) and the mean `m` over the initialised weights, times lr.
fn layer_updates(config: &TrainConfig) -> String {
    let optimizer = config.optimizer.to_config();
    let model = Vgg::new(config.model.width_divisor, config.seed, &Device::flex());
    let mut md = format!(
        "Expected first update of `{}` (VGG-16 at width/{}, He initialisation, seed {}, lr {}): GD at this lr has lr E[m] = {}. A layer far below GD's (e.g. 100x) barely moves at the start: not the maximal-update regime.\n\n| layer | fan-in | sigma (He) | potential | E[m(theta_0)] | measured mean m | lr E[m] |\n|---|---:|---:|---|---:|---:|---:|\n",
        config.name, config.model.width_divisor, config.seed, config.lr, config.lr
    );
    for layer in weight_layers(&model) {
        let w = fan_in(&layer.dims);
        let sigma = (2.0 / w as f64).sqrt();
        let potential = optimizer.potential_for(&layer.path, layer.dims.len());
        let map = MirrorMap::new(potential, optimizer.width_scaling, w);
        let expected = expected_inverse_metric(&map, sigma);
        let m = inverse_metric_at(&map, &layer.weights);
        let measured = m.iter().sum::<f64>() / m.len() as f64;
        let _ = writeln!(
            md,
            "| {} | {w} | {sigma:.3e} | {} | {expected:.4e} | {measured:.4e} | {:.3e} |",
            layer.path,
            potential.label(),
            config.lr * expected
        );
    }
    md.push('\n');
    md
}
