//! Tests of the mirror-descent optimizer against DESIGN §1, on fresh random inputs each run
//! (the seed is printed in every failure message).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};

use super::fallback::fallbacks_on_this_thread;
use super::*;
use crate::closeness::Closeness;
use crate::model::{BiasFreeMlp, Vgg};
use crate::test_support::{POTENTIALS, test_seed};

/// The test seed (fixed; `MIRRORBURN_TEST_SEED` overrides it), applied to the flex device.
fn seeded_device() -> (Device, u64) {
    let seed = test_seed(0x5EED_0001);
    let device = Device::flex();
    device.seed(seed);
    (device, seed)
}

fn host<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    tensor
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap()
}

/// The largest `|a - b|`, element by element; infinite where one side is NaN or infinite and the
/// other is not (a tensor `max` may skip NaN).
fn max_difference<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f64 {
    Closeness::between(&host(b), &host(a)).max_abs_difference()
}

fn f32_tensor<const D: usize>(values: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

fn f64_tensor<const D: usize>(values: Vec<f64>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), (device, DType::F64))
}

/// The inverse metric of DESIGN §1, written out independently of `MirrorMap`.
fn design_inverse_metric(potential: Potential, scaling: WidthScaling, w: f64, t: f64) -> f64 {
    match (potential, scaling) {
        (Potential::Gd, _) => 1.0,
        (Potential::Hyperbolic { lambda }, WidthScaling::FanIn) => {
            let u = w.sqrt() * t;
            (u * u + lambda).sqrt() / (1.0 + lambda).sqrt()
        }
        (Potential::Hyperbolic { lambda }, WidthScaling::None) => (t * t + lambda).sqrt(),
        (Potential::PHomogeneous { p, lambda }, WidthScaling::FanIn) => {
            let u = w.sqrt() * t;
            lambda / (u.abs().powf(p - 2.0) + lambda)
        }
        (Potential::PHomogeneous { p, lambda }, WidthScaling::None) => {
            1.0 / ((p - 1.0) * t.abs().powf(p - 2.0) + lambda)
        }
    }
}

fn assert_close(got: &[f64], want: &[f64], rel: f64, abs: f64, what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= abs + rel * w.abs(),
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn one_step_matches_the_design_closed_form() {
    let (device, seed) = seeded_device();
    // Fan-ins written out for Burn's layouts: conv [out, in, kh, kw] -> in kh kw; linear
    // [d_in, d_out] -> d_in.
    let shapes: [(Vec<usize>, f64); 2] = [(vec![8, 6, 3, 3], 54.0), (vec![40, 10], 40.0)];
    for (shape, w) in shapes {
        let n: usize = shape.iter().product();
        let std = (2.0 / w).sqrt();
        let theta: Tensor<2> = Tensor::random([n, 1], Distribution::Normal(0.0, std), &device);
        let grad: Tensor<2> = Tensor::random([n, 1], Distribution::Normal(0.0, 1.0), &device);
        let (t, g) = (host(theta.clone()), host(grad.clone()));
        for scaling in [WidthScaling::FanIn, WidthScaling::None] {
            for potential in POTENTIALS {
                let optimizer = MirrorDescent {
                    weights: potential,
                    biases: potential,
                    scaling,
                    step: StepForm::Primal,
                };
                let lr = 0.05;
                let want: Vec<f64> = (0..n)
                    .map(|i| t[i] - lr * design_inverse_metric(potential, scaling, w, t[i]) * g[i])
                    .collect();
                // Step the tensor in its real shape, so the optimizer computes the fan-in itself.
                let (got, _) = match shape.len() {
                    4 => {
                        let dims = [shape[0], shape[1], shape[2], shape[3]];
                        let (a, b) = (theta.clone().reshape(dims), grad.clone().reshape(dims));
                        let (out, s) = optimizer.step(lr, a, b, None);
                        (host(out), s)
                    }
                    _ => {
                        let dims = [shape[0], shape[1]];
                        let (a, b) = (theta.clone().reshape(dims), grad.clone().reshape(dims));
                        let (out, s) = optimizer.step(lr, a, b, None);
                        (host(out), s)
                    }
                };
                // f32 arithmetic: 1e-5 relative plus 1e-6 absolute.
                assert_close(
                    &got,
                    &want,
                    1e-5,
                    1e-6,
                    &format!("seed {seed} {potential:?} {scaling:?} {shape:?}"),
                );
            }
        }
    }
}

#[test]
fn gd_equals_burn_sgd_bit_for_bit() {
    let (device, seed) = seeded_device();
    let model = Vgg::new(16, seed, &device.clone().autodiff());
    let grads = random_gradients(&model, 0.1);
    let mut copies = GradientsParams::new();
    copy_gradients(&model, &grads, &mut copies);

    let mut sgd = SgdConfig::new().init();
    let mut gd = MirrorDescentConfig::new().init().unwrap();
    let by_sgd = sgd.step(0.1, model.clone(), grads);
    let by_gd = gd.step(0.1, model, copies);
    let (a, b) = (flat_params(&by_sgd), flat_params(&by_gd));
    assert_eq!(a, b, "seed {seed}: GD must equal SGD exactly");
}

fn copy_gradients<M: Module>(module: &M, from: &GradientsParams, to: &mut GradientsParams) {
    struct Copy<'a> {
        from: &'a GradientsParams,
        to: &'a mut GradientsParams,
    }
    impl ModuleVisitor for Copy<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let grad: Tensor<D> = self.from.get(param.id).unwrap();
            self.to.register(param.id, grad);
        }
    }
    module.visit(&mut Copy { from, to });
}

/// Every float parameter, flattened in visiting order, with its path.
fn path_values<M: Module>(module: &M) -> Vec<(String, Vec<f64>)> {
    named_params(module, true)
        .into_iter()
        .map(|p| (p.path, p.values))
        .collect()
}

fn flat_params<M: Module>(module: &M) -> Vec<f64> {
    named_params(module, true)
        .into_iter()
        .flat_map(|p| p.values)
        .collect()
}

#[test]
fn dual_and_primal_agree_to_second_order() {
    let (device, seed) = seeded_device();
    let n = 2000;
    let w = 64.0;
    // Away from the kink at 0 (|theta| >= 0.05, steps of ~1e-3 never cross it), where p = 3's
    // curvature is not smooth and the second-order agreement does not hold.
    let theta: Vec<f64> = host(Tensor::<1>::random(
        [n],
        Distribution::Normal(0.0, 0.2),
        &device,
    ))
    .into_iter()
    .map(|t| t.signum() * (0.05 + t.abs()))
    .collect();
    let grad: Vec<f64> = host(Tensor::<1>::random(
        [n],
        Distribution::Normal(0.0, 1.0),
        &device,
    ));
    for scaling in [WidthScaling::FanIn, WidthScaling::None] {
        for potential in POTENTIALS.into_iter().skip(1) {
            let map = MirrorMap::new(potential, scaling, w as usize);
            // In f64, so that the gap is far above rounding at every lr.
            let gap = |lr: f64| {
                let t = f64_tensor(theta.clone(), [n], &device);
                let g = f64_tensor(grad.clone(), [n], &device);
                let primal = map.primal_step(t.clone(), g.clone(), lr);
                let dual = map.dual_step(t, g, lr);
                max_difference(primal, dual)
            };
            let lr = 1e-3 / metric_scale(potential, scaling);
            let (g1, g2, g3) = (gap(lr), gap(lr / 2.0), gap(lr / 4.0));
            for (big, small) in [(g1, g2), (g2, g3)] {
                let ratio = big / small;
                assert!(
                    (3.5..=4.5).contains(&ratio),
                    "seed {seed} {potential:?} {scaling:?}: halving lr changed the gap {big:e} -> {small:e} (ratio {ratio})"
                );
            }
        }
    }
}

#[test]
fn hyperbolic_dual_step_matches_its_closed_form() {
    let (device, seed) = seeded_device();
    let shape = [32, 10];
    let w = 32.0f64;
    let theta: Tensor<2> = Tensor::random(shape, Distribution::Normal(0.0, 0.3), &device);
    let grad: Tensor<2> = Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let (t, g) = (host(theta.clone()), host(grad.clone()));
    for lambda in [1e-5, 0.01, 1.0] {
        let lr = 0.1;
        let optimizer = MirrorDescent {
            weights: Potential::Hyperbolic { lambda },
            biases: Potential::Gd,
            scaling: WidthScaling::FanIn,
            step: StepForm::Dual,
        };
        let (out, _) = optimizer.step(lr, theta.clone(), grad.clone(), None);
        let want: Vec<f64> = t
            .iter()
            .zip(&g)
            .map(|(&t, &g)| {
                let u = w.sqrt() * t;
                let inner = (u / lambda.sqrt()).asinh() - lr * w.sqrt() * g / (1.0 + lambda).sqrt();
                (lambda / w).sqrt() * inner.sinh()
            })
            .collect();
        // f32 asinh/sinh: 1e-4 relative (sinh amplifies the rounding of its argument) + 1e-6.
        assert_close(
            &host(out),
            &want,
            1e-4,
            1e-6,
            &format!("seed {seed} lambda {lambda}"),
        );
    }
}

/// `R'(t) = a t + b |t|^(p-2) t` in f64.
fn p_gradient(map: MirrorMap, t: f64) -> f64 {
    match map {
        MirrorMap::PHomogeneous { p, a, b } => a * t + b * t.abs().powf(p - 2.0) * t,
        _ => unreachable!(),
    }
}

#[test]
fn newton_solve_inverts_the_p_homogeneous_gradient() {
    let (device, seed) = seeded_device();
    let mut targets: Vec<f64> = host(Tensor::<1>::random(
        [500],
        Distribution::Normal(0.0, 1.0),
        &device,
    ));
    let spread: Vec<f64> = host(Tensor::<1>::random(
        [500],
        Distribution::Uniform(-30.0, 30.0),
        &device,
    ));
    targets.extend(spread.iter().map(|e| 10f64.powf(*e)));
    targets.extend(spread.iter().map(|e| -(10f64.powf(*e / 2.0))));
    targets.extend([0.0, 1e-38, -1e-30, 1e30, -3e37]);
    for (p, lambda) in [
        (2.0, 0.5),
        (3.0, 1.0),
        (2.5, 0.1),
        (10.0, 1e-5),
        (10.0, 1.0),
    ] {
        for scaling in [WidthScaling::FanIn, WidthScaling::None] {
            let map = MirrorMap::new(Potential::PHomogeneous { p, lambda }, scaling, 4608);
            // In f32, targets whose rescaled size |T| k / a fits f32 (the solve works in z = k t).
            let sp = map.scaled().unwrap();
            let fits: Vec<f64> = targets
                .iter()
                .copied()
                .filter(|t| ((t.abs() * sp.k / sp.a) as f32).is_finite())
                .collect();
            assert!(fits.len() >= targets.len() - 20, "p {p}: most targets fit");
            let n = fits.len();
            let solved = host(map.gradient_inverse(f32_tensor(&fits, [n], &device)));
            for (&target, &theta) in fits.iter().zip(&solved) {
                let target = target as f32 as f64;
                assert!(
                    theta.is_finite(),
                    "seed {seed} p {p}: non-finite solve of {target}"
                );
                let residual = (p_gradient(map, theta) - target).abs();
                assert!(
                    residual <= 1e-5 * target.abs(),
                    "seed {seed} p {p} lambda {lambda} {scaling:?}: R'({theta}) misses {target} by {residual}"
                );
            }
        }
    }
}

#[test]
fn dual_step_never_yields_non_finite_values() {
    let (device, seed) = seeded_device();
    let weights = [0.0, 1e-30, -1e-12, 1e-3, 0.5, -3.0, 1e6, -1e20, 3e38];
    let grads = [0.0, 1.0, -1e4, 1e8, -1e12];
    let (mut t, mut g) = (vec![], vec![]);
    for &a in &weights {
        for &b in &grads {
            t.push(a);
            g.push(b);
        }
    }
    let n = t.len();
    for potential in POTENTIALS {
        for scaling in [WidthScaling::FanIn, WidthScaling::None] {
            let map = MirrorMap::new(potential, scaling, 4608);
            let theta = f32_tensor(&t, [n], &device);
            let grad = f32_tensor(&g, [n], &device);
            let before = fallbacks_on_this_thread();
            let primal = host(map.primal_step(theta.clone(), grad.clone(), 0.1));
            let out = host(map.dual_step(theta, grad, 0.1));
            // Finite wherever the primal step is (every p-homogeneous case here): an exact step
            // that overflows falls back to the primal one.
            for (i, (dual, primal)) in out.iter().zip(&primal).enumerate() {
                assert!(
                    dual.is_finite() || !primal.is_finite(),
                    "seed {seed} {potential:?} {scaling:?}: element {i} (theta {}, g {}): {dual}",
                    t[i],
                    g[i]
                );
            }
            let counted = fallbacks_on_this_thread() - before;
            if let Potential::PHomogeneous { .. } = potential {
                assert!(
                    out.iter().all(|v| v.is_finite()),
                    "{potential:?} {scaling:?}: {out:?}"
                );
            }
            if let Potential::Hyperbolic { .. } = potential {
                // A weight of 3e38 has no finite exact step: the fallback is counted.
                assert!(counted > 0, "{potential:?} {scaling:?}: fallbacks counted");
            }
        }
    }
}

/// The largest inverse metric a potential can have near the origin: the unnormalised
/// p-homogeneous map reaches `1 / lambda`, every other map stays O(1). Step sizes and flow times
/// are divided by it so every potential is tested in the same (asymptotic) regime.
fn metric_scale(potential: Potential, scaling: WidthScaling) -> f64 {
    match (potential, scaling) {
        (Potential::PHomogeneous { lambda, .. }, WidthScaling::None) => 1.0 / lambda.min(1.0),
        _ => 1.0,
    }
}

/// Full-batch exponential-loss training of a tiny bias-free 2-layer ReLU net in f64 for flow
/// time `time`; returns how far `Q_1 - Q_2` drifted from its initial value.
fn balance_drift(potential: Potential, scaling: WidthScaling, lr: f64, seed: u64) -> f64 {
    let device = Device::flex().autodiff();
    let (n, d, h) = (32, 3, 12);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut normal = |count: usize, std: f64| -> Vec<f64> {
        use rand::RngExt;
        (0..count)
            .map(|_| {
                let (u, v): (f64, f64) = (rng.random(), rng.random());
                std * (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect()
    };
    let inputs = f64_tensor(normal(n * d, 1.0), [n, d], &device);
    let labels = f64_tensor(
        normal(n, 1.0).into_iter().map(|v| v.signum()).collect(),
        [n],
        &device,
    );
    // Start from a sane loss: the output layer is rescaled so that max |f(x)| = 1 at
    // initialisation (an unscaled random start can have exp-loss ~900 and make GD blow up).
    let first = f64_tensor(normal(d * h, 0.5), [d, h], &device);
    let second = f64_tensor(normal(h, 0.5), [h, 1], &device);
    let unscaled = BiasFreeMlp::from_weights(vec![first.clone(), second.clone()]);
    let peak = host(unscaled.forward(inputs.clone()).abs().max())[0];
    let mut model = BiasFreeMlp::from_weights(vec![first, second.div_scalar(peak)]);
    let config = MirrorDescentConfig::new()
        .with_potential(potential)
        .with_width_scaling(scaling);
    let mut optimizer = config.init().unwrap();
    let balance = |model: &BiasFreeMlp| -> f64 {
        let q: Vec<f64> = model
            .layers
            .iter()
            .map(|w| {
                let w = w.val();
                let map = MirrorMap::new(potential, scaling, fan_in(&w.dims()));
                host(map.conjugate_at_gradient(w).sum())[0]
            })
            .collect();
        q[0] - q[1]
    };
    let start = balance(&model);
    let time = 0.5 / metric_scale(potential, scaling);
    let steps = (time / lr).round() as usize;
    for _ in 0..steps {
        let margins = model.forward(inputs.clone()) * labels.clone();
        let loss = margins.neg().exp().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr, model, grads);
    }
    (balance(&model) - start).abs()
}

#[test]
fn balance_drift_is_first_order_in_lr() {
    let seed = test_seed(0x5EED_0002);
    for potential in POTENTIALS {
        for scaling in [WidthScaling::FanIn, WidthScaling::None] {
            let lr = 1e-3 / metric_scale(potential, scaling);
            let coarse = balance_drift(potential, scaling, lr, seed);
            let fine = balance_drift(potential, scaling, lr / 10.0, seed);
            let ratio = coarse / fine;
            assert!(
                (6.0..=16.0).contains(&ratio),
                "seed {seed} {potential:?} {scaling:?}: drift {coarse:e} at lr {lr:e} vs {fine:e} at lr/10 (ratio {ratio})"
            );
        }
    }
}

/// Each parameter's shape and gradient, in visiting order.
fn named_grads<M: Module>(module: &M, grads: &GradientsParams) -> Vec<(Vec<usize>, Vec<f64>)> {
    named_params(module, false)
        .into_iter()
        .map(|p| {
            let grad = match p.dims.len() {
                1 => host(grads.get::<1>(p.id).unwrap()),
                2 => host(grads.get::<2>(p.id).unwrap()),
                4 => host(grads.get::<4>(p.id).unwrap()),
                rank => panic!("no rank-{rank} parameters in the test models"),
            };
            (p.dims, grad)
        })
        .collect()
}

#[test]
fn invalid_settings_are_rejected_naming_the_field() {
    let bad_potentials = [
        (Potential::Hyperbolic { lambda: 0.0 }, "lambda"),
        (Potential::Hyperbolic { lambda: -1.0 }, "lambda"),
        (Potential::Hyperbolic { lambda: f64::NAN }, "lambda"),
        (
            Potential::PHomogeneous {
                p: 1.5,
                lambda: 1.0,
            },
            "p",
        ),
        (
            Potential::PHomogeneous {
                p: f64::INFINITY,
                lambda: 1.0,
            },
            "p",
        ),
        (
            Potential::PHomogeneous {
                p: 3.0,
                lambda: f64::INFINITY,
            },
            "lambda",
        ),
        (
            Potential::PHomogeneous {
                p: 3.0,
                lambda: -0.5,
            },
            "lambda",
        ),
    ];
    for (potential, field) in bad_potentials {
        let error = MirrorDescentConfig::new()
            .with_potential(potential)
            .init()
            .err()
            .expect("rejected")
            .to_string();
        assert!(
            error.starts_with(&format!("invalid `potential.{field}`")),
            "{error}"
        );
        let layered = MirrorDescentConfig::new()
            .with_layers(vec![LayerPotential {
                pattern: "*".into(),
                potential,
            }])
            .init()
            .err()
            .expect("rejected")
            .to_string();
        let want = format!("invalid `layers[0].potential.{field}`");
        assert!(layered.starts_with(&want), "{layered}");
    }
    let model = Vgg::new(32, 0, &Device::flex());
    for pattern in ["features.99.*", "", "classifier.bias"] {
        let error = MirrorDescentConfig::new()
            .with_layers(vec![
                LayerPotential {
                    pattern: "features.*".into(),
                    potential: Potential::Gd,
                },
                LayerPotential {
                    pattern: pattern.into(),
                    potential: Potential::Gd,
                },
            ])
            .init_for(&model)
            .err()
            .expect("rejected")
            .to_string();
        assert!(error.contains("`layers[1].pattern`"), "{error}");
        assert!(
            error.contains("features.0.weight"),
            "lists known parameters: {error}"
        );
    }
}

/// The optimizer keeps no state between steps (its `State` is `()`), so a checkpoint's weights
/// alone continue a run exactly: after steps by one optimizer, a fresh optimizer and one
/// restored from the first's record take the same next step as the first. Adding state (say,
/// momentum) makes the fresh optimizer differ, and this test fail, until checkpoints carry it.
#[test]
fn the_optimizer_keeps_no_state_so_fresh_and_restored_ones_continue_exactly() {
    let (device, seed) = seeded_device();
    let device = device.autodiff();
    for step in [StepForm::Primal, StepForm::Dual] {
        let config = MirrorDescentConfig::new()
            .with_potential(Potential::Hyperbolic { lambda: 0.1 })
            .with_step(step);
        let mut first = config.init().unwrap();
        let mut model = Vgg::new(32, seed, &device);
        for _ in 0..3 {
            let grads = random_gradients(&model, 0.1);
            model = first.step(0.1, model, grads);
        }
        let bytes = first.clone().into_bytes().unwrap();
        let mut restored = config.init().unwrap().from_bytes(bytes).unwrap();
        let mut fresh = config.init().unwrap();
        let grads = random_gradients(&model, 0.1);
        let (mut copy, mut another) = (GradientsParams::new(), GradientsParams::new());
        copy_gradients(&model, &grads, &mut copy);
        copy_gradients(&model, &grads, &mut another);
        let a = flat_params(&first.step(0.1, model.clone(), grads));
        let b = flat_params(&restored.step(0.1, model.clone(), copy));
        let c = flat_params(&fresh.step(0.1, model, another));
        assert_eq!(a, b, "{step:?}: restored from the record (seed {seed})");
        assert_eq!(a, c, "{step:?}: a fresh optimizer (seed {seed})");
    }
}

#[test]
fn fused_cpu_step_equals_the_tensor_op_step() {
    let (device, seed) = seeded_device();
    let n = 3000;
    let theta = host(Tensor::<1>::random(
        [n],
        Distribution::Normal(0.0, 0.3),
        &device,
    ));
    let grad = host(Tensor::<1>::random(
        [n],
        Distribution::Normal(0.0, 1.0),
        &device,
    ));
    for potential in POTENTIALS {
        for scaling in [WidthScaling::FanIn, WidthScaling::None] {
            let map = MirrorMap::new(potential, scaling, 27);
            // f32 on flex takes the one-pass path; f64 takes the tensor ops.
            let fused = host(map.primal_step(
                f32_tensor(&theta, [n], &device),
                f32_tensor(&grad, [n], &device),
                0.05,
            ));
            let ops = host(map.primal_step(
                f64_tensor(theta.clone(), [n], &device),
                f64_tensor(grad.clone(), [n], &device),
                0.05,
            ));
            // f32 against f64: 1e-5 relative (|t|^8 amplifies f32 rounding), plus 1e-6 absolute
            // for results that cancel (theta ~ 0.3 and lr m g nearly equal).
            assert_close(
                &fused,
                &ops,
                1e-5,
                1e-6,
                &format!("seed {seed} {potential:?} {scaling:?}"),
            );
        }
    }
}

#[test]
fn scalars_and_vectors_are_biases_for_the_optimizer_and_the_diagnostics_alike() {
    let config = MirrorDescentConfig::new().with_potential(Potential::Hyperbolic { lambda: 0.01 });
    let optimizer = MirrorDescent {
        weights: config.potential,
        biases: Potential::Gd,
        scaling: config.width_scaling,
        step: config.step,
    };
    for rank in 0..=4usize {
        let dims = vec![3; rank];
        let stepped_with = optimizer.map_for(&dims);
        let diagnosed_with = MirrorMap::new(
            config.potential_for("some.param", rank),
            config.width_scaling,
            fan_in(&dims),
        );
        assert_eq!(stepped_with, diagnosed_with, "rank {rank}");
        assert_eq!(is_weight(rank), rank >= 2, "rank {rank}");
    }
    // A rank-0 tensor is stepped with the bias potential (GD here).
    let device = Device::flex();
    let theta: Tensor<1> = f32_tensor(&[0.5], [1], &device);
    let stepped = optimizer
        .step(0.1, theta.clone().sum(), theta.sum().ones_like(), None)
        .0;
    assert_close(&host(stepped), &[0.4], 1e-7, 0.0, "rank-0 GD step");
}

/// `R'_w(t)` of DESIGN §1 in plain f64, independently of `MirrorMap`.
fn design_gradient(potential: Potential, scaling: WidthScaling, w: f64, t: f64) -> f64 {
    match (potential, scaling) {
        (Potential::Gd, _) => t,
        (Potential::Hyperbolic { lambda }, WidthScaling::FanIn) => {
            (1.0 + lambda).sqrt() / w.sqrt() * (w.sqrt() * t / lambda.sqrt()).asinh()
        }
        (Potential::Hyperbolic { lambda }, WidthScaling::None) => (t / lambda.sqrt()).asinh(),
        (Potential::PHomogeneous { p, lambda }, WidthScaling::FanIn) => {
            t + w.powf((p - 2.0) / 2.0) * t.abs().powf(p - 2.0) * t / ((p - 1.0) * lambda)
        }
        (Potential::PHomogeneous { p, lambda }, WidthScaling::None) => {
            t.abs().powf(p - 2.0) * t + lambda * t
        }
    }
}

/// One step of DESIGN §1 in plain f64: the primal form, or the exact step solved by bisection
/// on the monotone `R'_w` (an independent method from the optimizer's Newton and closed forms).
fn design_step(
    potential: Potential,
    scaling: WidthScaling,
    step: StepForm,
    w: f64,
    t: f64,
    g: f64,
    lr: f64,
) -> f64 {
    if step == StepForm::Primal {
        return t - lr * design_inverse_metric(potential, scaling, w, t) * g;
    }
    let target = design_gradient(potential, scaling, w, t) - lr * g;
    let f = |x: f64| design_gradient(potential, scaling, w, x) - target;
    let (mut lo, mut hi) = (-1.0, 1.0);
    while f(lo) > 0.0 {
        lo *= 2.0;
    }
    while f(hi) < 0.0 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < 0.0 { lo = mid } else { hi = mid }
    }
    0.5 * (lo + hi)
}

/// The step of `map` through the one-pass CPU kernel (f32 on flex) and through the tensor ops
/// (the GPU path, here on the autodiff flex device where the kernel is not used).
fn both_paths(
    map: MirrorMap,
    step: StepForm,
    t: &[f64],
    g: &[f64],
    lr: f64,
) -> (Vec<f64>, Vec<f64>) {
    let n = t.len();
    let run = |device: &Device| {
        let (theta, grad) = (f32_tensor(t, [n], device), f32_tensor(g, [n], device));
        host(match step {
            StepForm::Primal => map.primal_step(theta, grad, lr),
            StepForm::Dual => map.dual_step(theta, grad, lr),
        })
    };
    (run(&Device::flex()), run(&Device::flex().autodiff()))
}

#[test]
fn p_just_above_two_updates_every_weight_on_both_paths() {
    let potential = Potential::PHomogeneous {
        p: 2.1,
        lambda: 1e-5,
    };
    let map = MirrorMap::new(potential, WidthScaling::FanIn, 27);
    let (t, g) = ([0.0, 0.01, -0.3], [1.0, 1.0, 1.0]);
    for step in [StepForm::Primal, StepForm::Dual] {
        let want: Vec<f64> = (0..3)
            .map(|i| design_step(potential, WidthScaling::FanIn, step, 27.0, t[i], g[i], 0.1))
            .collect();
        let (fused, ops) = both_paths(map, step, &t, &g, 0.1);
        assert_close(&fused, &want, 1e-5, 1e-7, &format!("{step:?} fused"));
        assert_close(&ops, &want, 1e-5, 1e-7, &format!("{step:?} tensor ops"));
        if step == StepForm::Primal {
            assert!(
                (fused[0] + 0.1).abs() < 1e-6,
                "the zero weight moves by -lr g"
            );
        }
    }
}

#[test]
fn large_p_at_vgg_fan_in_is_exact_without_fallback() {
    let potential = Potential::PHomogeneous {
        p: 24.0,
        lambda: 1e-5,
    };
    let map = MirrorMap::new(potential, WidthScaling::FanIn, 4608);
    let (t, g) = ([0.0, 0.005, 0.05, 0.005], [1.0, 1.0, 1.0, -1.0]);
    for step in [StepForm::Primal, StepForm::Dual] {
        let want: Vec<f64> = (0..t.len())
            .map(|i| {
                design_step(
                    potential,
                    WidthScaling::FanIn,
                    step,
                    4608.0,
                    t[i],
                    g[i],
                    0.1,
                )
            })
            .collect();
        let (fused, ops) = both_paths(map, step, &t, &g, 0.1);
        assert_close(&fused, &want, 2e-5, 1e-8, &format!("{step:?} fused"));
        assert_close(&ops, &want, 2e-5, 1e-8, &format!("{step:?} tensor ops"));
    }
    // theta 0.005 with g = -1: the exact step is far from the primal one (0.105), so matching
    // the reference above also shows that no element fell back to the primal step.
    let exact = design_step(
        potential,
        WidthScaling::FanIn,
        StepForm::Dual,
        4608.0,
        0.005,
        -1.0,
        0.1,
    );
    assert!(exact < 0.05, "exact {exact}");
}

#[test]
fn hyperbolic_exact_step_does_not_overflow_before_its_result_does() {
    let potential = Potential::Hyperbolic { lambda: 1e-5 };
    let map = MirrorMap::new(potential, WidthScaling::FanIn, 4608);
    let want = design_step(
        potential,
        WidthScaling::FanIn,
        StepForm::Dual,
        4608.0,
        0.1,
        -13.0,
        0.1,
    );
    assert!(want > 1e37 && want < 3e38, "reference {want:e}");
    let (fused, ops) = both_paths(map, StepForm::Dual, &[0.1], &[-13.0], 0.1);
    assert_close(&fused, &[want], 1e-4, 0.0, "fused");
    assert_close(&ops, &[want], 1e-4, 0.0, "tensor ops");
}

#[test]
fn the_exact_step_with_zero_gradient_is_the_identity_over_many_steps() {
    let (device, seed) = seeded_device();
    let n = 4096;
    let theta: Vec<f64> = host(Tensor::<1>::random(
        [n],
        Distribution::Normal(0.0, 0.5),
        &device,
    ));
    let zero = vec![0.0; n];
    for potential in POTENTIALS {
        for scaling in [WidthScaling::FanIn, WidthScaling::None] {
            let map = MirrorMap::new(potential, scaling, 4608);
            for device in [Device::flex(), Device::flex().autodiff()] {
                let start = f32_tensor(&theta, [n], &device);
                let mut current = start.clone();
                for _ in 0..200 {
                    current = map.dual_step(current, f32_tensor(&zero, [n], &device), 0.1);
                }
                let moved = max_difference(current, start);
                assert_eq!(
                    moved,
                    0.0,
                    "seed {seed} {potential:?} {scaling:?} autodiff {}",
                    device.is_autodiff()
                );
            }
        }
    }
}

#[test]
fn fused_and_tensor_op_steps_agree_with_the_design_everywhere() {
    // Exact zeros, tiny weights across 1e-8..1 (no threshold may freeze them), both signs.
    let mut t: Vec<f64> = vec![0.0, -0.0];
    for decade in -8..=0 {
        for mantissa in [1.0, 3.0] {
            let v = mantissa * 10f64.powi(decade);
            if v <= 1.0 {
                t.extend([v, -v]);
            }
        }
    }
    let g: Vec<f64> = t
        .iter()
        .enumerate()
        .map(|(i, _)| [1.0, -0.3, 2.5][i % 3])
        .collect();
    for potential in POTENTIALS.into_iter().chain([Potential::PHomogeneous {
        p: 2.5,
        lambda: 0.1,
    }]) {
        for scaling in [WidthScaling::FanIn, WidthScaling::None] {
            for step in [StepForm::Primal, StepForm::Dual] {
                let w = 64.0;
                let map = MirrorMap::new(potential, scaling, w as usize);
                let lr = 1e-3 / metric_scale(potential, scaling);
                let want: Vec<f64> = t
                    .iter()
                    .zip(&g)
                    .map(|(&t, &g)| design_step(potential, scaling, step, w, t, g, lr))
                    .collect();
                let (fused, ops) = both_paths(map, step, &t, &g, lr);
                let what = format!("{potential:?} {scaling:?} {step:?}");
                assert_close(&fused, &want, 2e-6, 1e-9, &format!("{what} fused"));
                assert_close(&ops, &want, 2e-6, 1e-9, &format!("{what} tensor ops"));
                // Every weight whose step exceeds f32 rounding moves (no threshold freezes small
                // weights).
                for (i, ((&before, &after), &target)) in t.iter().zip(&fused).zip(&want).enumerate()
                {
                    let before = before as f32;
                    let ulp = (f32::from_bits(before.abs().to_bits() + 1) - before.abs()) as f64;
                    if (target - before as f64).abs() > 2.0 * ulp {
                        assert_ne!(
                            before as f64, after,
                            "{what}: weight {i} = {before:e} did not move"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_scaling_and_step_routes_each_tensor_and_bias_to_its_potential() {
    let (device, seed) = seeded_device();
    let mut model = Vgg::new(16, seed, &device.clone().autodiff());
    // A non-zero bias: at zero several maps coincide with GD.
    let bias = model.features[0].bias.take().unwrap();
    let dims = bias.val().dims();
    model.features[0].bias = Some(burn::module::Param::from_tensor(
        Tensor::<1>::random(
            dims,
            Distribution::Normal(0.0, 0.3),
            &device.clone().autodiff(),
        )
        .require_grad(),
    ));
    let hyperbolic = Potential::Hyperbolic { lambda: 0.01 };
    let p10 = Potential::PHomogeneous {
        p: 10.0,
        lambda: 0.1,
    };
    let p3 = Potential::PHomogeneous {
        p: 3.0,
        lambda: 1.0,
    };
    let claimed = vec![
        LayerPotential {
            pattern: "features.0.*".into(),
            potential: p10,
        },
        LayerPotential {
            pattern: "features.1*".into(),
            potential: p3,
        },
        LayerPotential {
            pattern: "features.12.weight".into(),
            potential: Potential::Gd,
        },
    ];
    let unclaimed = vec![LayerPotential {
        pattern: "features.1*".into(),
        potential: p3,
    }];
    for (layers, bias_potential) in [(claimed, p10), (unclaimed, Potential::Gd)] {
        for scaling in [WidthScaling::FanIn, WidthScaling::None] {
            for step in [StepForm::Primal, StepForm::Dual] {
                let config = MirrorDescentConfig::new()
                    .with_potential(hyperbolic)
                    .with_width_scaling(scaling)
                    .with_step(step)
                    .with_layers(layers.clone());
                let intended = |path: &str| match path {
                    "features.0.bias" => bias_potential,
                    "features.0.weight" if bias_potential == p10 => p10,
                    "features.1.weight" | "features.10.weight" | "features.11.weight" => p3,
                    "features.12.weight" if bias_potential == p10 => Potential::Gd,
                    "features.12.weight" => p3, // "features.1*" matches it too
                    _ => hyperbolic,
                };
                let before = path_values(&model);
                let grads = random_gradients(&model, 0.5);
                let mut copy = GradientsParams::new();
                copy_gradients(&model, &grads, &mut copy);
                let grad_values = named_grads(&model, &copy);
                let mut optimizer = config.init_for(&model).unwrap();
                let after = path_values(&optimizer.step(0.01, model.clone(), grads));
                for (((path, old), (_, new)), (shape, grad)) in
                    before.iter().zip(&after).zip(&grad_values)
                {
                    let potential = intended(path);
                    assert_eq!(config.potential_for(path, shape.len()), potential, "{path}");
                    let w = match path.as_str() {
                        "features.0.weight" => 27.0,
                        "features.0.bias" => 1.0,
                        "classifier.weight" => 32.0,
                        _ => fan_in(shape) as f64,
                    };
                    let want: Vec<f64> = old
                        .iter()
                        .zip(grad)
                        .map(|(&t, &g)| design_step(potential, scaling, step, w, t, g, 0.01))
                        .collect();
                    let what = format!("seed {seed} {scaling:?} {step:?} {path} ({potential:?})");
                    assert_close(new, &want, 1e-4, 1e-6, &what);
                }
            }
        }
    }
}

#[test]
fn describe_shows_each_parameters_fan_in_and_potential() {
    let model = Vgg::new(16, 0, &Device::flex());
    let config = MirrorDescentConfig::new().with_potential(Potential::Hyperbolic { lambda: 0.01 });
    let text = config.describe(&model);
    assert!(text.contains("features.0.weight [4, 3, 3, 3]: fan-in 27, hyperbolic(lambda=0.01), fan_in scaling, primal step"), "{text}");
    assert!(text.contains("features.0.bias [4]: fan-in 1, gd"), "{text}");
    assert!(
        text.contains("classifier.weight [32, 10]: fan-in 32, hyperbolic"),
        "{text}"
    );
}

#[test]
fn a_map_that_f32_cannot_represent_is_rejected_naming_the_limit() {
    let model = Vgg::new(16, 0, &Device::flex());
    // p just above 2 with a vanishing lambda: b / a = w^(e/2) / ((p-1) lambda) exceeds f32.
    let config = MirrorDescentConfig::new().with_potential(Potential::PHomogeneous {
        p: 2.01,
        lambda: 1e-45,
    });
    let message = config.init_for(&model).err().unwrap().to_string();
    assert!(
        message.contains("cannot be computed in f32") && message.contains("features.0.weight"),
        "{message}"
    );
    // The paper's range and far beyond it is accepted.
    for (p, lambda) in [
        (2.01, 1e-5),
        (3.0, 1e-5),
        (10.0, 1e-5),
        (24.0, 1e-5),
        (64.0, 1e-5),
        (10.0, 1e-30),
    ] {
        let config =
            MirrorDescentConfig::new().with_potential(Potential::PHomogeneous { p, lambda });
        assert!(config.init_for(&model).is_ok(), "p {p} lambda {lambda}");
    }
}

/// A hyperbolic lambda so small that the offset `1/s^2 = lambda / fan-in` is subnormal in f32
/// (GPUs flush it to zero: a weight at zero would never move there) is refused before training,
/// naming the setting; the smallest lambda that keeps it normal at every VGG fan-in passes.
#[test]
fn a_hyperbolic_offset_that_would_be_subnormal_is_rejected() {
    let model = Vgg::new(16, 0, &Device::flex());
    let hyperbolic =
        |lambda| MirrorDescentConfig::new().with_potential(Potential::Hyperbolic { lambda });
    let message = hyperbolic(1e-36)
        .init_for(&model)
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("1/s^2") && message.contains("larger lambda"),
        "{message}"
    );
    assert!(hyperbolic(1e-30).init_for(&model).is_ok());
    let unscaled = hyperbolic(1e-39).with_width_scaling(WidthScaling::None);
    assert!(unscaled.init_for(&model).is_err());
}

#[test]
fn the_host_f64_step_equals_the_f64_tensor_step_and_the_design() {
    let (device, seed) = seeded_device();
    let n = 2000;
    // Weights across scales with exact zeros, gradients up to steps large enough for the
    // hyperbolic exponential form (|d| >= 0.25 at lr 0.5).
    let mut theta = host(Tensor::<1>::random(
        [n],
        Distribution::Normal(0.0, 0.3),
        &device,
    ));
    theta.iter_mut().step_by(7).for_each(|t| *t = 0.0);
    theta.iter_mut().skip(3).step_by(5).for_each(|t| *t *= 1e-4);
    let grad = host(Tensor::<1>::random(
        [n],
        Distribution::Normal(0.0, 1.0),
        &device,
    ));
    for potential in POTENTIALS.into_iter().chain([Potential::PHomogeneous {
        p: 2.5,
        lambda: 0.1,
    }]) {
        for scaling in [WidthScaling::FanIn, WidthScaling::None] {
            for step in [StepForm::Primal, StepForm::Dual] {
                for lr in [1e-3, 0.5] {
                    let w = 27.0;
                    let map = MirrorMap::new(potential, scaling, w as usize);
                    let lr = lr / metric_scale(potential, scaling);
                    let mut on_host = theta.clone();
                    map.step_host(step, &mut on_host, &grad, lr);
                    let (t, g) = (
                        f64_tensor(theta.clone(), [n], &device),
                        f64_tensor(grad.clone(), [n], &device),
                    );
                    let tensor = host(match step {
                        StepForm::Primal => map.primal_step(t, g, lr),
                        StepForm::Dual => map.dual_step(t, g, lr),
                    });
                    let what = format!("seed {seed} {potential:?} {scaling:?} {step:?} lr {lr}");
                    assert_close(&on_host, &tensor, 1e-12, 1e-15, &what);
                    let design: Vec<f64> = theta
                        .iter()
                        .zip(&grad)
                        .map(|(&t, &g)| design_step(potential, scaling, step, w, t, g, lr))
                        .collect();
                    assert_close(&on_host, &design, 1e-9, 1e-12, &format!("{what} design"));
                }
            }
        }
    }
}
