//! Schedules that change over `total_iters` steps and then hold: PyTorch's `ConstantLR`, `LinearLR` and
//! `PolynomialLR`. All three are chainable; their recursions differ from the closed forms in the last bits
//! and, at `total_iters = 0`, in value — the recursions are what PyTorch runs, so they are what runs here.

use serde::{Deserialize, Serialize};

use super::group::{Group, base_lrs};
use super::pymath;
use crate::{Error, Result};

fn d_third() -> f64 {
    1.0 / 3.0
}
fn d_one() -> f64 {
    1.0
}
fn d_five() -> i64 {
    5
}

/// `ConstantLR(factor=1/3, total_iters=5)`, `0 ≤ factor ≤ 1`:
/// t = 0: `lr·factor`; t = T: `lr·(1.0/factor)`; otherwise unchanged. With T = 0 the lr stays `b·factor`
/// (the closed form would say b); factor 0 raises ZeroDivisionError at t = T.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstantCfg {
    #[serde(default = "d_third")]
    pub factor: f64,
    #[serde(default = "d_five")]
    pub total_iters: i64,
}

impl Default for ConstantCfg {
    fn default() -> Self {
        ConstantCfg { factor: d_third(), total_iters: d_five() }
    }
}

/// `LinearLR(start_factor=1/3, end_factor=1.0, total_iters=5)`, `0 < s ≤ 1`, `0 ≤ e ≤ 1`:
/// t = 0: `lr·s`; 1 ≤ t ≤ T: `lr·(1 + (e−s)/(T·s + (t−1)·(e−s)))`; t > T: unchanged.
/// Closed form `b·(s + (e−s)·min(t,T)/T)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearCfg {
    #[serde(default = "d_third")]
    pub start_factor: f64,
    #[serde(default = "d_one")]
    pub end_factor: f64,
    #[serde(default = "d_five")]
    pub total_iters: i64,
}

impl Default for LinearCfg {
    fn default() -> Self {
        LinearCfg { start_factor: d_third(), end_factor: d_one(), total_iters: d_five() }
    }
}

/// `PolynomialLR(total_iters=5, power=1.0)`: 1 ≤ t ≤ T: `lr·((1 − t/T)/(1 − (t−1)/T))^power`; otherwise
/// unchanged. Closed form `b·(1 − min(t,T)/T)^power`: exactly 0 at T (no end lr).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolynomialCfg {
    #[serde(default = "d_five")]
    pub total_iters: i64,
    #[serde(default = "d_one")]
    pub power: f64,
}

impl Default for PolynomialCfg {
    fn default() -> Self {
        PolynomialCfg { total_iters: d_five(), power: d_one() }
    }
}

/// PyTorch's `ConstantLR`.
#[derive(Clone, Debug)]
pub struct ConstantLr {
    cfg: ConstantCfg,
    base_lrs: Vec<f64>,
    pub(crate) t: i64,
}

impl ConstantLr {
    /// Validate (ValueError unless 0 ≤ factor ≤ 1) and run step 0 (`lr·factor`).
    pub fn new(groups: &mut [Group], cfg: ConstantCfg) -> Result<ConstantLr> {
        // Written as PyTorch's `factor > 1.0 or factor < 0` so NaN passes, as it does there.
        if cfg.factor > 1.0 || cfg.factor < 0.0 {
            return Err(Error::Schedule(format!("constant.factor must be between 0 and 1 (got {})", cfg.factor)));
        }
        let mut s = ConstantLr { cfg, base_lrs: base_lrs(groups), t: -1 };
        s.step(groups)?;
        Ok(s)
    }

    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        let f = if t == 0 {
            self.cfg.factor
        } else if t != self.cfg.total_iters {
            self.t = t;
            return Ok(());
        } else {
            pymath::div(1.0, self.cfg.factor, "constant.factor")?
        };
        for g in groups.iter_mut() {
            g.lr *= f;
        }
        self.t = t;
        Ok(())
    }

    /// SequentialLR restart: `b·(factor + (0 ≥ T)·(1 − factor))`.
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        let on = if 0 >= self.cfg.total_iters { 1.0 } else { 0.0 };
        let f = self.cfg.factor + on * (1.0 - self.cfg.factor);
        for (g, b) in groups.iter_mut().zip(&self.base_lrs) {
            g.lr = b * f;
        }
        self.t = 0;
        Ok(())
    }

    /// factor 0 raises at t = T (when T ≥ 1 lies within the run).
    pub fn check_run(&self, steps: usize) -> Result<()> {
        let t_end = self.t.saturating_add(pymath::run_len(steps));
        let hit = self.cfg.total_iters > self.t && self.cfg.total_iters <= t_end && self.cfg.total_iters != 0;
        if self.cfg.factor == 0.0 && hit {
            return Err(Error::Schedule(format!(
                "constant.factor must be in (0, 1] when total_iters ({}) is reached within the run (got 0: restoring the lr divides by zero)",
                self.cfg.total_iters
            )));
        }
        Ok(())
    }
}

/// PyTorch's `LinearLR`.
#[derive(Clone, Debug)]
pub struct LinearLr {
    cfg: LinearCfg,
    base_lrs: Vec<f64>,
    pub(crate) t: i64,
}

impl LinearLr {
    /// Validate (ValueError unless 0 < start ≤ 1 and 0 ≤ end ≤ 1) and run step 0 (`lr·start_factor`).
    pub fn new(groups: &mut [Group], cfg: LinearCfg) -> Result<LinearLr> {
        if cfg.start_factor > 1.0 || cfg.start_factor <= 0.0 {
            return Err(Error::Schedule(format!(
                "linear.start_factor must be greater than 0 and at most 1 (got {})",
                cfg.start_factor
            )));
        }
        if cfg.end_factor > 1.0 || cfg.end_factor < 0.0 {
            return Err(Error::Schedule(format!("linear.end_factor must be between 0 and 1 (got {})", cfg.end_factor)));
        }
        let mut s = LinearLr { cfg, base_lrs: base_lrs(groups), t: -1 };
        s.step(groups)?;
        Ok(s)
    }

    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        let (s, e, n) = (self.cfg.start_factor, self.cfg.end_factor, self.cfg.total_iters);
        let f = if t == 0 {
            s
        } else if t > n {
            self.t = t;
            return Ok(());
        } else {
            // Python: int·float + int·float, then a float division (the denominator is ≥ s > 0 here).
            1.0 + pymath::div(e - s, n as f64 * s + (t - 1) as f64 * (e - s), "linear")?
        };
        for g in groups.iter_mut() {
            g.lr *= f;
        }
        self.t = t;
        Ok(())
    }

    /// SequentialLR restart: `b·(s + (e−s)·min(T,0)/T)` (ZeroDivisionError for T = 0).
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        let (s, e, n) = (self.cfg.start_factor, self.cfg.end_factor, self.cfg.total_iters);
        let f = s + pymath::div((e - s) * n.min(0) as f64, n as f64, "linear.total_iters")?;
        for (g, b) in groups.iter_mut().zip(&self.base_lrs) {
            g.lr = b * f;
        }
        self.t = 0;
        Ok(())
    }
}

/// PyTorch's `PolynomialLR`.
#[derive(Clone, Debug)]
pub struct PolynomialLr {
    cfg: PolynomialCfg,
    base_lrs: Vec<f64>,
    pub(crate) t: i64,
}

impl PolynomialLr {
    /// Build and run step 0 (which changes nothing).
    pub fn new(groups: &mut [Group], cfg: PolynomialCfg) -> Result<PolynomialLr> {
        let mut s = PolynomialLr { cfg, base_lrs: base_lrs(groups), t: -1 };
        s.step(groups)?;
        Ok(s)
    }

    fn decay(&self, t: i64) -> Result<f64> {
        let n = self.cfg.total_iters as f64;
        let num = 1.0 - pymath::div(t as f64, n, "polynomial.total_iters")?;
        let den = 1.0 - pymath::div((t - 1) as f64, n, "polynomial.total_iters")?;
        pymath::pow(pymath::div(num, den, "polynomial")?, self.cfg.power, "polynomial.power")
    }

    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        if t != 0 && t <= self.cfg.total_iters {
            let f = self.decay(t)?;
            for g in groups.iter_mut() {
                g.lr *= f;
            }
        }
        self.t = t;
        Ok(())
    }

    /// SequentialLR restart: `b·(1 − min(T,0)/T)^power`.
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        let n = self.cfg.total_iters;
        let base = 1.0 - pymath::div(n.min(0) as f64, n as f64, "polynomial.total_iters")?;
        let f = pymath::pow(base, self.cfg.power, "polynomial.power")?;
        for (g, b) in groups.iter_mut().zip(&self.base_lrs) {
            g.lr = b * f;
        }
        self.t = 0;
        Ok(())
    }

    /// A negative power raises at t = T (`0.0 ** power`) or may overflow before; the decay only runs for
    /// t ≤ T, so at most T factors are evaluated.
    pub fn check_run(&self, steps: usize) -> Result<()> {
        if self.cfg.power >= 0.0 {
            return Ok(());
        }
        let last = self.t.saturating_add(pymath::run_len(steps)).min(self.cfg.total_iters);
        for t in (self.t + 1).max(1)..=last {
            self.decay(t).map_err(|_| {
                Error::Schedule(format!(
                    "polynomial.power must be ≥ 0 for a run that reaches step {t} of total_iters {} (got {}: PyTorch raises at that step)",
                    self.cfg.total_iters, self.cfg.power
                ))
            })?;
        }
        Ok(())
    }
}
