//! The learning rate on linear regression, where everything can be computed exactly: the article's demo, done right.
//!
//!     cargo run --release --example lr_linear_regression -- [--plot FILE.png|FILE.svg] [--epochs N]
//!
//! Data with a real signal: X is 1000×10 standard normal, y = X·w + ε with w standard normal and ε ~ N(0, 0.1²)
//! (fixed seed). The model is ŷ = X·ŵ from ŵ = 0, trained by full-batch gradient descent on the mean squared error
//! L(ŵ) = (1/n)‖Xŵ − y‖², whose gradient is ∇L = (2/n)·Xᵀ(Xŵ − y) and whose Hessian is the constant H = 2·XᵀX/n.
//! Gradient descent multiplies the error along each eigenvector of H by (1 − lr·λ) per step, so it converges
//! for lr < 2/λ_max and diverges above it. The example prints λ_min and λ_max of H and that threshold, trains with
//! lr 0.01, lr 0.1 and an lr 10% above the threshold, prints the loss per epoch of each and the final distance
//! ‖ŵ − w‖ (beside the least-squares solution's, the best any lr can reach: the noise level), and draws the loss
//! against the step on a log axis to `--plot` (default `target/lr_linear_regression.png`).
//!
//! What the source article ([2] in docs/seeds.md) printed, and why it cannot be right:
//! - It derives `∂L/∂θ = −½·2·∂ŷ/∂θ` and updates `θ − η·∂ŷ/∂θ`: the residual (y − ŷ) is dropped and the sign is
//!   wrong. The gradient is −(2/n)·Σ(y − ŷ)·∂ŷ/∂θ, so the update is θ + η·(2/n)·Σ(y − ŷ)·∂ŷ/∂θ (as here).
//! - Its demo draws y = randn, independent of x, yet prints the loss falling from 0.0223 to 0.0008 at lr 0.01 and
//!   staying at 0.2143 at lr 0.1, which it calls overfitting. With y independent of x no weight can explain y:
//!   the MSE stays near Var(y) ≈ 1 (fitting 10 weights to 1000 points of noise removes about 10/1000 of it), and
//!   the example shows that too. Nor can lr 0.1 "overfit" more than lr 0.01 here: both head to the same
//!   least-squares solution, 0.1 just gets there ten times faster; it only fails past 2/λ_max, by diverging.
//! - Its printed epochs (1, 2) do not match its own loop, which prints every 10th, and it computes no test loss,
//!   so nothing it printed could show overfitting.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[path = "support/log_chart.rs"]
mod log_chart;
use log_chart::{Line, LogChart, LogPanel};

/// Samples, features, noise standard deviation, seed.
pub const N: usize = 1000;
pub const D: usize = 10;
pub const NOISE: f64 = 0.1;
pub const SEED: u64 = 2024;

/// A regression problem: `x` is n×d row-major; `w` the weights that generated `y` (zero for the article's data).
pub struct Data {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub w: Vec<f64>,
    pub n: usize,
    pub d: usize,
}

fn normals(rng: &mut ChaCha8Rng, k: usize) -> Vec<f64> {
    // Box–Muller: one standard normal from two uniforms, the first in (0, 1] so its log is finite.
    (0..k)
        .map(|_| {
            let (u, v) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

impl Data {
    /// y = X·w + N(0, noise²): a real signal.
    pub fn linear(n: usize, d: usize, noise: f64, seed: u64) -> Data {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = normals(&mut rng, n * d);
        let w = normals(&mut rng, d);
        let eps = normals(&mut rng, n);
        let y = (0..n).map(|i| dot(&x[i * d..(i + 1) * d], &w) + noise * eps[i]).collect();
        Data { x, y, w, n, d }
    }

    /// The article's data: y = randn, independent of X (there is nothing to learn).
    pub fn article(n: usize, d: usize, seed: u64) -> Data {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = normals(&mut rng, n * d);
        let y = normals(&mut rng, n);
        Data { x, y, w: vec![0.0; d], n, d }
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// The mean squared error (1/n)‖Xŵ − y‖².
    pub fn loss(&self, w: &[f64]) -> f64 {
        (0..self.n).map(|i| (dot(self.row(i), w) - self.y[i]).powi(2)).sum::<f64>() / self.n as f64
    }

    /// ∇L = (2/n)·Xᵀ(Xŵ − y).
    pub fn gradient(&self, w: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; self.d];
        for i in 0..self.n {
            let r = dot(self.row(i), w) - self.y[i];
            for (gj, xj) in g.iter_mut().zip(self.row(i)) {
                *gj += 2.0 * r * xj / self.n as f64;
            }
        }
        g
    }

    /// The Hessian of the MSE, H = 2·XᵀX/n (d×d, row-major), the same at every ŵ.
    pub fn hessian(&self) -> Vec<f64> {
        let d = self.d;
        let mut h = vec![0.0; d * d];
        for i in 0..self.n {
            let r = self.row(i);
            for a in 0..d {
                for b in 0..d {
                    h[a * d + b] += 2.0 * r[a] * r[b] / self.n as f64;
                }
            }
        }
        h
    }

    /// The least-squares solution (XᵀX)⁻¹Xᵀy: the minimum of the loss, which gradient descent approaches.
    pub fn least_squares(&self) -> Vec<f64> {
        let h = self.hessian();
        let rhs: Vec<f64> = self.gradient(&vec![0.0; self.d]).iter().map(|g| -g).collect();
        solve_spd(&h, &rhs, self.d)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt()
}

/// Solve H·x = b for a symmetric positive-definite H by Cholesky (H = L·Lᵀ).
fn solve_spd(h: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s = h[i * d + j] - (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum::<f64>();
            l[i * d + j] = if i == j { s.sqrt() } else { s / l[j * d + j] };
        }
    }
    let mut z = vec![0.0; d];
    for i in 0..d {
        z[i] = (b[i] - (0..i).map(|k| l[i * d + k] * z[k]).sum::<f64>()) / l[i * d + i];
    }
    let mut x = vec![0.0; d];
    for i in (0..d).rev() {
        x[i] = (z[i] - (i + 1..d).map(|k| l[k * d + i] * x[k]).sum::<f64>()) / l[i * d + i];
    }
    x
}

/// The largest eigenvalue of a symmetric positive semi-definite matrix by power iteration: the Rayleigh quotient's
/// error shrinks as (λ₂/λ₁)^(2k), so 2000 iterations reach f64 precision unless the top two eigenvalues agree to
/// better than about 1% (and then either is as good a threshold).
fn largest_eigenvalue(h: &[f64], d: usize) -> f64 {
    let mut v = vec![1.0; d];
    let mut lambda = 0.0;
    for _ in 0..2000 {
        let hv: Vec<f64> = (0..d).map(|a| dot(&h[a * d..(a + 1) * d], &v)).collect();
        lambda = dot(&v, &hv) / dot(&v, &v);
        let norm = dot(&hv, &hv).sqrt();
        v = hv.iter().map(|x| x / norm).collect();
    }
    lambda
}

/// (λ_min, λ_max) of H: λ_min as λ_max − (the largest eigenvalue of λ_max·I − H).
pub fn eigen_range(h: &[f64], d: usize) -> (f64, f64) {
    let max = largest_eigenvalue(h, d);
    let shifted: Vec<f64> = (0..d * d).map(|k| if k / d == k % d { max - h[k] } else { -h[k] }).collect();
    (max - largest_eigenvalue(&shifted, d), max)
}

/// One gradient-descent run: the loss before the first step and after each epoch (one full-batch step), and ŵ.
pub struct Run {
    pub lr: f64,
    pub losses: Vec<f64>,
    pub w: Vec<f64>,
}

/// Full-batch gradient descent from ŵ = 0 for `epochs` steps.
pub fn descend(data: &Data, lr: f64, epochs: usize) -> Run {
    let mut w = vec![0.0; data.d];
    let mut losses = vec![data.loss(&w)];
    for _ in 0..epochs {
        let g = data.gradient(&w);
        for (wj, gj) in w.iter_mut().zip(&g) {
            *wj -= lr * gj;
        }
        losses.push(data.loss(&w));
    }
    Run { lr, losses, w }
}

/// `x` rounded up to two significant digits (a printable lr just above a threshold).
fn round_up_2(x: f64) -> f64 {
    let k = x.log10().floor() as i32 - 1;
    // Divide by an exact power of ten where one exists (0.94 = 94/100, not 94·0.01 = 0.9400000000000001).
    if k < 0 { (x * 10f64.powi(-k)).ceil() / 10f64.powi(-k) } else { (x / 10f64.powi(k)).ceil() * 10f64.powi(k) }
}

/// The diverging lr: 10% above 2/λ_max, rounded up to two significant digits.
pub fn diverging_lr(lambda_max: f64) -> f64 {
    round_up_2(1.1 * 2.0 / lambda_max)
}

fn main() -> Result<()> {
    let (mut plot, mut epochs) = (PathBuf::from("target/lr_linear_regression.png"), 100usize);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("usage: lr_linear_regression [--plot FILE.png|FILE.svg] [--epochs N]");
            return Ok(());
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--plot" => plot = value.into(),
            "--epochs" => epochs = value.parse().context("--epochs")?,
            other => bail!("unknown option {other}; expected --plot FILE, --epochs N"),
        }
    }
    let data = Data::linear(N, D, NOISE, SEED);
    let (lmin, lmax) = eigen_range(&data.hessian(), D);
    let threshold = 2.0 / lmax;
    println!("data: X {N}×{D} ~ N(0,1), y = X·w + N(0, {NOISE}²); loss = mean squared error");
    println!(
        "Hessian 2·XᵀX/n: λ_min = {lmin:.4}, λ_max = {lmax:.4}; gradient descent diverges for lr > 2/λ_max = {threshold:.4}"
    );
    let lrs = [0.01, 0.1, diverging_lr(lmax)];
    let runs: Vec<Run> = lrs.iter().map(|&lr| descend(&data, lr, epochs)).collect();

    let header: Vec<String> = runs.iter().map(|r| format!("{:>14}", format!("lr {}", r.lr))).collect();
    println!("\nepoch {}", header.join(""));
    for e in 0..=epochs {
        let cells: Vec<String> = runs.iter().map(|r| format!("{:>14.6e}", r.losses[e])).collect();
        println!("{e:>5} {}", cells.join(""));
    }
    let ols = data.least_squares();
    println!("\nfinal ‖ŵ − w‖:");
    for r in &runs {
        println!("  lr {:<6} {:.3e}", r.lr, distance(&r.w, &data.w));
    }
    println!(
        "  least squares (the noise level, the best any lr can reach): {:.3e}, loss {:.6e}",
        distance(&ols, &data.w),
        data.loss(&ols)
    );

    let article = Data::article(N, D, SEED + 1);
    let (a01, a1) = (descend(&article, 0.01, epochs), descend(&article, 0.1, epochs));
    println!(
        "\nthe article's data (y = randn, independent of X): loss {:.4} at start, {:.4} after {epochs} epochs at lr \
         0.01, {:.4} at lr 0.1 (it printed 0.0008 and 0.2143)",
        a01.losses[0], a01.losses[epochs], a1.losses[epochs]
    );

    if let Some(dir) = plot.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut lines: Vec<Line> = runs
        .iter()
        .map(|r| Line {
            label: if r.lr > threshold {
                format!("lr {} (> 2/λ_max = {threshold:.3})", r.lr)
            } else {
                format!("lr {}", r.lr)
            },
            points: r.losses.iter().enumerate().map(|(e, &l)| (e as f64, l)).collect(),
            mark_end: false,
            dashed: false,
        })
        .collect();
    let floor = data.loss(&ols);
    lines.push(Line {
        label: format!("least-squares minimum ({floor:.2e}, the noise)"),
        points: vec![(0.0, floor), (epochs as f64, floor)],
        mark_end: false,
        dashed: true,
    });
    let chart = LogChart {
        title: "Linear regression: gradient descent at three learning rates".into(),
        subtitle: format!(
            "y = Xw + noise (σ = {NOISE}), X {N}×{D}; full-batch gradient descent on the MSE from w = 0; λ_max of \
             the Hessian {lmax:.3}"
        ),
        x_label: "step (epoch)".into(),
        panels: vec![LogPanel { y_label: "mean squared error (log)".into(), lines, weight: 1, legend: true }],
        size: (1000, 650),
        legend_at: plotters::chart::SeriesLabelPosition::UpperLeft,
    };
    wgtrain::plot::save(&plot, &chart)?;
    println!("plot: {}", plot.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCHS: usize = 100;

    /// lr 0.1 converges to the least-squares solution within the theory's bound, and so to the noise level;
    /// lr 0.01 is still far from it after the same epochs, at a higher loss.
    #[test]
    fn a_larger_stable_lr_converges_faster_to_the_noise_level() {
        let data = Data::linear(N, D, NOISE, SEED);
        let (lmin, lmax) = eigen_range(&data.hessian(), D);
        let ols = data.least_squares();
        let (slow, fast) = (descend(&data, 0.01, EPOCHS), descend(&data, 0.1, EPOCHS));
        assert!(fast.losses[EPOCHS] < slow.losses[EPOCHS]);
        // Each step multiplies the error ŵ − ŵ_ols by (I − lr·H), whose norm is max|1 − lr·λ|.
        let rate = (1.0 - 0.1 * lmin).abs().max((1.0 - 0.1 * lmax).abs());
        let bound = rate.powi(EPOCHS as i32) * distance(&[0.0; D], &ols);
        // 1e-12: room for the f64 rounding of 100 steps, far below the bound itself (~1e-7 here).
        assert!(distance(&fast.w, &ols) <= bound + 1e-12, "{} > {bound}", distance(&fast.w, &ols));
        // The noise level: E‖ŵ_ols − w‖² = σ²·tr((XᵀX)⁻¹) = σ²·tr(2H⁻¹/n) ≤ σ²·2d/(n·λ_min); three times its
        // square root is far in the tail of that distance (a sum of 10 squared normals).
        let noise_level = NOISE * (D as f64 * 2.0 / (N as f64 * lmin)).sqrt();
        assert!(distance(&fast.w, &data.w) < 3.0 * noise_level, "{} vs {noise_level}", distance(&fast.w, &data.w));
        assert!(distance(&slow.w, &data.w) > 10.0 * noise_level, "lr 0.01 cannot have converged in {EPOCHS} epochs");
        // The converged loss is the noise variance, less the part the 10 weights fit: σ²(1 − d/n) on average.
        let floor = data.loss(&ols);
        assert!((floor / (NOISE * NOISE) - 1.0).abs() < 0.15, "noise floor {floor}");
    }

    /// 2/λ_max is the threshold: 10% below it the loss falls, 10% above it grows every epoch, without bound.
    #[test]
    fn gradient_descent_diverges_exactly_above_two_over_lambda_max() {
        let data = Data::linear(N, D, NOISE, SEED);
        let (_, lmax) = eigen_range(&data.hessian(), D);
        let floor = data.loss(&data.least_squares());
        let below = descend(&data, 0.9 * 2.0 / lmax, EPOCHS);
        let excess = below.losses[EPOCHS] - floor;
        assert!(excess < 1e-6 * below.losses[0], "excess loss {excess} over the least-squares minimum");
        let lr = diverging_lr(lmax);
        assert!(lr > 2.0 / lmax && lr < 1.2 * 2.0 / lmax);
        let above = descend(&data, lr, EPOCHS);
        assert!(above.losses[EPOCHS] > 1e6 * above.losses[0], "{:?}", &above.losses[EPOCHS - 3..]);
        // Once the top eigendirection dominates (after a few epochs), the loss grows at every step.
        assert!(above.losses[20..].windows(2).all(|p| p[1] > p[0]));
    }

    /// The article's data: y independent of X. No lr brings the loss near the 0.0008 it printed: 10 weights fit
    /// only about d/n = 1% of 1000 points of noise.
    #[test]
    fn with_y_independent_of_x_the_loss_stays_near_var_y() {
        let data = Data::article(N, D, SEED + 1);
        let start = data.loss(&[0.0; D]);
        let best = data.loss(&data.least_squares());
        assert!(best > 0.95 * start, "least squares {best} vs {start}");
        for lr in [0.01, 0.1] {
            let run = descend(&data, lr, EPOCHS);
            assert!(run.losses[EPOCHS] >= best - 1e-12 && run.losses[EPOCHS] > 0.5, "lr {lr}: {}", run.losses[EPOCHS]);
        }
    }

    #[test]
    fn the_solver_and_eigenvalues_are_right_on_a_known_matrix() {
        // diag(1, 4, 9) rotated by nothing: eigenvalues 1 and 9; solution of H x = (1, 8, 27) is (1, 2, 3).
        let h = [1.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 9.0];
        let (lo, hi) = eigen_range(&h, 3);
        assert!((lo - 1.0).abs() < 1e-9 && (hi - 9.0).abs() < 1e-9, "{lo} {hi}");
        let x = solve_spd(&h, &[1.0, 8.0, 27.0], 3);
        assert!(distance(&x, &[1.0, 2.0, 3.0]) < 1e-12);
        // A full SPD matrix: [[4, 2], [2, 3]] has eigenvalues (7 ± √17)/2.
        let (lo, hi) = eigen_range(&[4.0, 2.0, 2.0, 3.0], 2);
        let r = 17f64.sqrt();
        assert!((lo - (7.0 - r) / 2.0).abs() < 1e-9 && (hi - (7.0 + r) / 2.0).abs() < 1e-9);
        assert_eq!((round_up_2(0.8312), round_up_2(0.934), round_up_2(12.01)), (0.84, 0.94, 13.0));
    }
}
