//! Cosine annealing: PyTorch's `CosineAnnealingLR` (chainable recursion, periodic past T_max) and
//! `CosineAnnealingWarmRestarts` (absolute, restarts at T_0, T_0(1+m), …).

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::group::{Group, base_lrs};
use super::pymath;
use crate::{Error, Result};

fn d_one() -> i64 {
    1
}

/// `CosineAnnealingLR(T_max, eta_min=0.0)`. t = 0: unchanged. t ≥ 1:
/// - if `(t − 1 − T) mod 2T == 0`: `lr + (b − η)·(1 − cos(π/T))/2` (the ratio below would be 0/0);
/// - else `(1 + cos(π·t/T)) / (1 + cos(π·(t−1)/T)) · (lr − η) + η`.
///
/// Closed form `η + (b − η)·(1 + cos(πt/T))/2`, which differs from the recursion in the last bits (PyTorch
/// runs the recursion). Nothing clamps past T_max: the lr is periodic with period 2T. T_max = 0 raises
/// ZeroDivisionError at the first `step()`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosineAnnealingCfg {
    pub t_max: i64,
    #[serde(default)]
    pub eta_min: f64,
}

/// `CosineAnnealingWarmRestarts(T_0, T_mult=1, eta_min=0.0)`, absolute:
/// `lr = η + (b − η)·(1 + cos(π·T_cur/T_i))/2`. Each `step()`: `T_cur += 1`; if `T_cur ≥ T_i`:
/// `T_cur −= T_i`, `T_i ·= T_mult`. η is never reached; restarts land at t = T_0, T_0(1+m), ….
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmRestartsCfg {
    pub t_0: i64,
    #[serde(default = "d_one")]
    pub t_mult: i64,
    #[serde(default)]
    pub eta_min: f64,
}

/// PyTorch's `CosineAnnealingLR`.
#[derive(Clone, Debug)]
pub struct CosineAnnealingLr {
    cfg: CosineAnnealingCfg,
    base_lrs: Vec<f64>,
    pub(crate) t: i64,
}

impl CosineAnnealingLr {
    /// Build and run step 0 (which changes nothing).
    pub fn new(groups: &mut [Group], cfg: CosineAnnealingCfg) -> Result<CosineAnnealingLr> {
        let mut s = CosineAnnealingLr { cfg, base_lrs: base_lrs(groups), t: -1 };
        s.step(groups)?;
        Ok(s)
    }

    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        if t != 0 {
            let (tm, eta) = (self.cfg.t_max, self.cfg.eta_min);
            let tmf = tm as f64;
            // Python evaluates `(t - 1 - T) % (2 * T)` on ints: T = 0 is ZeroDivisionError here.
            if pymath::imod(t - 1 - tm, 2 * tm, "cosine_annealing.t_max")? == 0 {
                let c = (PI / tmf).cos();
                for (g, b) in groups.iter_mut().zip(&self.base_lrs) {
                    g.lr += (b - eta) * (1.0 - c) / 2.0;
                }
            } else {
                let num = 1.0 + (PI * t as f64 / tmf).cos();
                let den = 1.0 + (PI * (t - 1) as f64 / tmf).cos();
                let ratio = pymath::div(num, den, "cosine_annealing")?;
                for g in groups.iter_mut() {
                    g.lr = ratio * (g.lr - eta) + eta;
                }
            }
        }
        self.t = t;
        Ok(())
    }

    /// SequentialLR restart: the closed form at 0, `η + (b − η)·(1 + cos(π·0/T))/2`.
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        let eta = self.cfg.eta_min;
        let c = (pymath::div(PI * 0.0, self.cfg.t_max as f64, "cosine_annealing.t_max")?).cos();
        for (g, b) in groups.iter_mut().zip(&self.base_lrs) {
            g.lr = eta + (b - eta) * (1.0 + c) / 2.0;
        }
        self.t = 0;
        Ok(())
    }

    /// T_max = 0 raises at the first `step()`.
    pub fn check_run(&self, steps: usize) -> Result<()> {
        if self.cfg.t_max == 0 && steps > 0 {
            return Err(Error::Schedule(
                "cosine_annealing.t_max must be a nonzero integer (got 0: PyTorch raises ZeroDivisionError at the first step())".into(),
            ));
        }
        Ok(())
    }
}

/// PyTorch's `CosineAnnealingWarmRestarts`.
#[derive(Clone, Debug)]
pub struct WarmRestartsLr {
    cfg: WarmRestartsCfg,
    base_lrs: Vec<f64>,
    pub(crate) t: i64,
    /// Steps since the last restart; a float because `step_epoch` accepts fractional epochs.
    pub(crate) t_cur: f64,
    /// Length of the current cycle.
    pub(crate) t_i: i64,
}

impl WarmRestartsLr {
    /// Validate (ValueError unless T_0 ≥ 1 and T_mult ≥ 1) and run step 0 (lr = b).
    pub fn new(groups: &mut [Group], cfg: WarmRestartsCfg) -> Result<WarmRestartsLr> {
        if cfg.t_0 < 1 {
            return Err(Error::Schedule(format!(
                "cosine_annealing_warm_restarts.t_0 must be a positive integer (got {})",
                cfg.t_0
            )));
        }
        if cfg.t_mult < 1 {
            return Err(Error::Schedule(format!(
                "cosine_annealing_warm_restarts.t_mult must be an integer ≥ 1 (got {})",
                cfg.t_mult
            )));
        }
        let t_i = cfg.t_0;
        let mut s = WarmRestartsLr { cfg, base_lrs: base_lrs(groups), t: -1, t_cur: -1.0, t_i };
        // PyTorch's first step() with last_epoch < 0 is step(epoch=0).
        s.step_epoch(groups, 0.0)?;
        Ok(s)
    }

    fn apply(&self, groups: &mut [Group]) {
        let eta = self.cfg.eta_min;
        let c = (PI * self.t_cur / self.t_i as f64).cos();
        for (g, b) in groups.iter_mut().zip(&self.base_lrs) {
            g.lr = eta + (b - eta) * (1.0 + c) / 2.0;
        }
    }

    /// Plain `step()`: `T_cur += 1`; a restart when `T_cur ≥ T_i`. With t < 0 (rewound by SequentialLR)
    /// PyTorch takes this as `step(epoch=0)`.
    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        if self.t < 0 {
            return self.step_epoch(groups, 0.0);
        }
        let mut t_cur = self.t_cur + 1.0;
        let mut t_i = self.t_i;
        if t_cur >= t_i as f64 {
            t_cur -= t_i as f64;
            t_i = t_i.checked_mul(self.cfg.t_mult).ok_or_else(|| {
                Error::Schedule(
                    "cosine_annealing_warm_restarts: cycle length overflows i64 (t_mult too large for this run)".into(),
                )
            })?;
        }
        self.t += 1;
        self.t_cur = t_cur;
        self.t_i = t_i;
        self.apply(groups);
        Ok(())
    }

    /// PyTorch's `step(epoch)` with a (possibly fractional) epoch e ≥ 0:
    /// e < T_0: `T_i = T_0, T_cur = e`; m = 1: `T_cur = e mod T_0`; m > 1: `n = int(log(e/T_0·(m−1) + 1, m))`,
    /// `T_cur = e − T_0·(m^n − 1)/(m − 1)`, `T_i = T_0·m^n`; then t = floor(e). Replicates the
    /// `log(1000, 10) = 2.9999999999999996` rounding, as PyTorch does.
    pub fn step_epoch(&mut self, groups: &mut [Group], epoch: f64) -> Result<()> {
        if epoch.is_nan() || epoch < 0.0 {
            return Err(Error::Schedule(format!(
                "cosine_annealing_warm_restarts: epoch must be non-negative (got {epoch})"
            )));
        }
        let (t0, m) = (self.cfg.t_0, self.cfg.t_mult);
        if epoch >= t0 as f64 {
            if m == 1 {
                self.t_cur = epoch % t0 as f64;
            } else {
                let mf = m as f64;
                let n = ((epoch / t0 as f64 * (mf - 1.0) + 1.0).ln() / mf.ln()) as i64;
                let mn = u32::try_from(n).ok().and_then(|n| m.checked_pow(n)).ok_or_else(|| {
                    Error::Schedule(format!(
                        "cosine_annealing_warm_restarts: epoch {epoch} is too large for t_mult {m}"
                    ))
                })?;
                // Python: T_0 * (m**n - 1) is an int, then a true division by (m - 1).
                self.t_cur = epoch - (t0 as i128 * (mn as i128 - 1)) as f64 / (m - 1) as f64;
                self.t_i = t0.checked_mul(mn).ok_or_else(|| {
                    Error::Schedule(format!(
                        "cosine_annealing_warm_restarts: epoch {epoch} is too large for t_mult {m}"
                    ))
                })?;
            }
        } else {
            self.t_i = t0;
            self.t_cur = epoch;
        }
        self.t = epoch.floor() as i64;
        self.apply(groups);
        Ok(())
    }

    /// SequentialLR restart: `step(0)`.
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        self.step_epoch(groups, 0.0)
    }
}
