//! The learning-rate range test (Smith 2015; fastai's `lr_find`, Lightning's `Tuner.lr_find`): the math, apart
//! from the training it drives. The lr grows exponentially per step, the loss is smoothed by a bias-corrected
//! exponential moving average, the test stops once the smoothed loss exceeds a multiple of its minimum, and three
//! rules suggest a value from the curve (docs/cli.md, `lr-find`).

use serde::Serialize;

/// `start·(end/start)^(i/(steps−1))`: the lr of step i of `steps` (computed in f64, as the uniform's source).
pub fn lr_at(i: usize, steps: usize, start: f64, end: f64) -> f64 {
    if steps <= 1 {
        return start;
    }
    start * (end / start).powf(i as f64 / (steps - 1) as f64)
}

/// fastai's `AvgSmoothLoss`: `avg = β·avg + (1 − β)·loss`, reported as `avg / (1 − β^count)`, so the first
/// values are not pulled towards 0.
#[derive(Clone, Debug)]
pub struct Smoother {
    beta: f64,
    avg: f64,
    count: i32,
    best: f64,
}

impl Smoother {
    pub fn new(beta: f64) -> Smoother {
        Smoother { beta, avg: 0.0, count: 0, best: f64::INFINITY }
    }

    /// Add a loss; returns the smoothed value.
    pub fn push(&mut self, loss: f64) -> f64 {
        self.count += 1;
        self.avg = self.beta * self.avg + (1.0 - self.beta) * loss;
        let smoothed = self.avg / (1.0 - self.beta.powi(self.count));
        if smoothed < self.best {
            self.best = smoothed;
        }
        smoothed
    }

    /// Whether the test should stop: the smoothed loss is not finite, or above `factor` × its minimum so far.
    pub fn diverged(&self, smoothed: f64, factor: f64) -> bool {
        !smoothed.is_finite() || smoothed > factor * self.best
    }
}

/// The three suggestions, each an lr (None when the curve is too short to say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Suggestions {
    pub valley: Option<f64>,
    pub steepest: Option<f64>,
    pub minimum: Option<f64>,
}

/// Suggestions from the curve `(lr, smoothed loss)`, with fastai's trimming: the first tenth of the steps (the
/// moving average is still settling) and the last five (where it blows up) are left out when the curve is long
/// enough to spare them.
pub fn suggest(lrs: &[f64], smoothed: &[f64]) -> Suggestions {
    let n = lrs.len().min(smoothed.len());
    let (lo, hi) = if n >= 20 { (n / 10, n - 5) } else { (0, n) };
    let (lrs, losses) = (&lrs[lo..hi], &smoothed[lo..hi]);
    Suggestions { valley: valley(lrs, losses), steepest: steepest(lrs, losses), minimum: minimum(lrs, losses) }
}

/// fastai's `valley`: the longest descending run of the curve (a longest-decreasing-subsequence length per
/// point, quadratic as in fastai; curves have a few hundred points), then the point about two thirds of the way
/// down it: `start + ⌊len/3⌋ + ⌊len/6⌋`.
pub fn valley(lrs: &[f64], losses: &[f64]) -> Option<f64> {
    let n = losses.len();
    if n < 2 {
        return None;
    }
    let mut lds = vec![1i64; n];
    // Signed like fastai's Python: a run that starts at index 0 gives max_start = −1.
    let (mut max_start, mut max_end) = (0i64, 0usize);
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end as i64 - lds[max_end];
            }
        }
    }
    let sections = (max_end as i64 - max_start) as f64 / 3.0;
    let idx = max_start + sections as i64 + (sections / 2.0) as i64;
    lrs.get(idx.max(0) as usize).copied()
}

/// The lr of the most negative slope of the loss against log lr (fastai's `steep`).
pub fn steepest(lrs: &[f64], losses: &[f64]) -> Option<f64> {
    (1..losses.len())
        .map(|i| (i - 1, (losses[i] - losses[i - 1]) / (lrs[i].ln() - lrs[i - 1].ln())))
        .filter(|(_, g)| g.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| lrs[i])
}

/// The lr of the minimum of the curve, divided by 10 (fastai's `minimum`).
pub fn minimum(lrs: &[f64], losses: &[f64]) -> Option<f64> {
    losses
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| lrs[i] / 10.0)
}
