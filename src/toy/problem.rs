//! The student-teacher data: points on the unit circle labelled by a random 3-neuron ReLU teacher,
//! redrawn until both classes are present.

use rand::{RngExt, SeedableRng, rngs::StdRng};

/// Teachers a problem seed may draw before [`problem`] gives up.
pub const MAX_TEACHER_DRAWS: usize = 1000;

/// Points, labels and how they were drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// `[n, 2]` row-major inputs on the unit circle.
    pub inputs: Vec<f64>,
    /// Labels in {-1, +1}.
    pub labels: Vec<f64>,
    /// Teachers (with their points) drawn and rejected before this one because a class had fewer
    /// than the minimum of points.
    pub redraws: usize,
    /// Points labelled -1 and +1.
    pub class_counts: [usize; 2],
    /// The teacher's neurons as `a_j w_j` (unit vectors with the sign of their output weight).
    pub teacher: Vec<[f64; 2]>,
}

/// No teacher of a problem seed labelled enough points with each class.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "problem seed {seed}: none of {draws} teachers labels at least {min_points} of the {points} \
     points with each class (min_class_fraction = {fraction}); lower `min_class_fraction` \
     (at most 0.5) or choose another `problem_seed`"
)]
pub struct ProblemError {
    /// The problem seed.
    pub seed: u64,
    /// Teachers drawn.
    pub draws: usize,
    /// Points required in each class.
    pub min_points: usize,
    /// Points in the problem.
    pub points: usize,
    /// The required fraction.
    pub fraction: f64,
}

/// Data on the unit circle labelled by a random teacher `f(x) = sum_j a_j relu(w_j . x)` with
/// `|a_j| = ||w_j|| = 1`. Teacher and points are drawn from one stream seeded by `seed`; while a
/// class has fewer than `ceil(min_class_fraction * points)` points, the next teacher and points
/// are drawn from the same stream (so a seed whose first draw is two-class gives that draw).
pub fn problem(
    seed: u64,
    points: usize,
    teacher_neurons: usize,
    min_class_fraction: f64,
) -> Result<Problem, ProblemError> {
    let min_points = (min_class_fraction * points as f64).ceil() as usize;
    let mut rng = StdRng::seed_from_u64(seed);
    for redraws in 0..MAX_TEACHER_DRAWS {
        let (teacher, inputs, labels) = draw(&mut rng, points, teacher_neurons);
        let positives = labels.iter().filter(|&&y| y > 0.0).count();
        let class_counts = [points - positives, positives];
        if class_counts.iter().all(|&count| count >= min_points) {
            let teacher = teacher.iter().map(|(a, w)| [a * w[0], a * w[1]]).collect();
            return Ok(Problem {
                inputs,
                labels,
                redraws,
                class_counts,
                teacher,
            });
        }
    }
    Err(ProblemError {
        seed,
        draws: MAX_TEACHER_DRAWS,
        min_points,
        points,
        fraction: min_class_fraction,
    })
}

/// A teacher's neurons `(a_j, w_j)`.
type Teacher = Vec<(f64, [f64; 2])>;

/// One teacher and its labelled points.
fn draw(rng: &mut StdRng, points: usize, teacher_neurons: usize) -> (Teacher, Vec<f64>, Vec<f64>) {
    let teacher: Teacher = (0..teacher_neurons)
        .map(|_| {
            let angle = rng.random_range(0.0..std::f64::consts::TAU);
            let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            (sign, [angle.cos(), angle.sin()])
        })
        .collect();
    let mut inputs = Vec::with_capacity(2 * points);
    let mut labels = Vec::with_capacity(points);
    for _ in 0..points {
        let angle = rng.random_range(0.0..std::f64::consts::TAU);
        let x = [angle.cos(), angle.sin()];
        let f: f64 = teacher
            .iter()
            .map(|(a, w)| a * (w[0] * x[0] + w[1] * x[1]).max(0.0))
            .sum();
        inputs.extend(x);
        labels.push(if f > 0.0 { 1.0 } else { -1.0 });
    }
    (teacher, inputs, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_seed_has_both_classes() {
        let mut redrawn = 0;
        for seed in 0..500 {
            let p = problem(seed, 200, 3, 0.1).unwrap();
            assert!(
                p.class_counts.iter().all(|&c| c >= 20),
                "problem seed {seed}: classes {:?}",
                p.class_counts
            );
            let positives = p.labels.iter().filter(|&&y| y == 1.0).count();
            assert_eq!(p.class_counts, [200 - positives, positives], "seed {seed}");
            redrawn += usize::from(p.redraws > 0);
        }
        // About a quarter of 3-neuron teachers have all output weights negative or label too few
        // points +1 (the issue found 4 of 12 seeds one-class).
        assert!((50..250).contains(&redrawn), "{redrawn} of 500 redrawn");
    }

    #[test]
    fn the_one_class_seed_is_redrawn_and_two_class_seeds_are_unchanged() {
        // Problem seed 0 labelled all 200 points -1 before the redraw; seed 1 had 59 positives.
        let zero = problem(0, 200, 3, 0.1).unwrap();
        assert!(
            zero.redraws >= 1 && zero.class_counts[1] >= 20,
            "{:?}",
            zero.class_counts
        );
        let one = problem(1, 200, 3, 0.1).unwrap();
        assert_eq!((one.redraws, one.class_counts[1]), (0, 59));
        // Without a minimum the first draw is kept, one class or not.
        let unconstrained = problem(0, 200, 3, 0.0).unwrap();
        assert_eq!(
            (unconstrained.redraws, unconstrained.class_counts),
            (0, [200, 0])
        );
    }

    #[test]
    fn an_impossible_minimum_is_an_error_naming_the_fix() {
        // 101 points of each class among 201 cannot exist.
        let error = problem(3, 201, 3, 0.5).unwrap_err();
        assert_eq!((error.min_points, error.draws), (101, MAX_TEACHER_DRAWS));
        assert!(
            error.to_string().contains("lower `min_class_fraction`"),
            "{error}"
        );
    }
}
