//! Staircase and geometric decay: PyTorch's `StepLR`, `MultiStepLR` and `ExponentialLR`. All three are
//! chainable (`lr ← lr·g`) and leave the lr unchanged at t = 0 (except a milestone at 0).

use serde::{Deserialize, Serialize};

use super::group::{Group, base_lrs};
use super::pymath;
use crate::{Error, Result};

fn d_gamma() -> f64 {
    0.1
}

/// `StepLR(step_size, gamma=0.1)`: at t ≥ 1, `lr ← lr·γ` when `t mod step_size == 0` (Python floor mod).
/// Closed form `b·γ^⌊t/step_size⌋`. `step_size = 0` constructs and then raises on the first `step()`
/// (ZeroDivisionError), so wgtrain rejects it before a run ([`StepLr::check_run`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepCfg {
    pub step_size: i64,
    #[serde(default = "d_gamma")]
    pub gamma: f64,
}

/// `MultiStepLR(milestones, gamma=0.1)`: milestones are a multiset; at every t including 0, if t occurs c > 0
/// times, `lr ← lr·γ^c`. Unsorted and repeated milestones are accepted as PyTorch accepts them.
/// Closed form `b·γ^(number of milestones ≤ t)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiStepCfg {
    pub milestones: Vec<i64>,
    #[serde(default = "d_gamma")]
    pub gamma: f64,
}

/// `ExponentialLR(gamma)`: at t ≥ 1, `lr ← lr·γ`; closed form `b·γ^t`. γ > 1 grows, as in PyTorch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExponentialCfg {
    pub gamma: f64,
}

/// PyTorch's `StepLR` on a set of groups.
#[derive(Clone, Debug)]
pub struct StepLr {
    cfg: StepCfg,
    base_lrs: Vec<f64>,
    pub(crate) t: i64,
}

impl StepLr {
    /// Build and run step 0 (which changes nothing).
    pub fn new(groups: &mut [Group], cfg: StepCfg) -> Result<StepLr> {
        let mut s = StepLr { cfg, base_lrs: base_lrs(groups), t: -1 };
        s.step(groups)?;
        Ok(s)
    }

    /// `t += 1`; at t ≥ 1 multiply by γ when `t mod step_size == 0`.
    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        // t == 0 short-circuits before the modulo in PyTorch, so step_size 0 constructs fine.
        if t != 0 && pymath::imod(t, self.cfg.step_size, "step.step_size")? == 0 {
            for g in groups.iter_mut() {
                g.lr *= self.cfg.gamma;
            }
        }
        self.t = t;
        Ok(())
    }

    /// SequentialLR restart: t = 0 and `lr = b·γ^(0 // step_size)` (ZeroDivisionError for step_size 0).
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        let e = pymath::ifloordiv(0, self.cfg.step_size, "step.step_size")?;
        let f = pymath::pow(self.cfg.gamma, e as f64, "step.gamma")?;
        for (g, b) in groups.iter_mut().zip(&self.base_lrs) {
            g.lr = b * f;
        }
        self.t = 0;
        Ok(())
    }

    /// Errors the next `steps` calls of `step()` would raise: only step_size 0.
    pub fn check_run(&self, steps: usize) -> Result<()> {
        if self.cfg.step_size == 0 && steps > 0 {
            return Err(Error::Schedule(
                "step.step_size must be a nonzero integer (got 0: PyTorch raises ZeroDivisionError at the first step())".into(),
            ));
        }
        Ok(())
    }
}

/// PyTorch's `MultiStepLR` on a set of groups.
#[derive(Clone, Debug)]
pub struct MultiStepLr {
    cfg: MultiStepCfg,
    base_lrs: Vec<f64>,
    /// Sorted copy: `_get_closed_form_lr` bisects `sorted(milestones.elements())`.
    sorted: Vec<i64>,
    pub(crate) t: i64,
}

impl MultiStepLr {
    /// Build and run step 0 (a milestone at 0 applies here).
    pub fn new(groups: &mut [Group], cfg: MultiStepCfg) -> Result<MultiStepLr> {
        let mut sorted = cfg.milestones.clone();
        sorted.sort_unstable();
        let mut s = MultiStepLr { cfg, base_lrs: base_lrs(groups), sorted, t: -1 };
        s.step(groups)?;
        Ok(s)
    }

    fn count(&self, t: i64) -> usize {
        // Binary search on the sorted copy: O(log n) per step, no allocation.
        let lo = self.sorted.partition_point(|&m| m < t);
        let hi = self.sorted.partition_point(|&m| m <= t);
        hi - lo
    }

    /// `t += 1`; if t is a milestone c times, `lr ← lr·γ^c` (Python `gamma ** c`).
    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        let c = self.count(t);
        if c > 0 {
            let f = pymath::pow(self.cfg.gamma, c as f64, "multi_step.gamma")?;
            for g in groups.iter_mut() {
                g.lr *= f;
            }
        }
        self.t = t;
        Ok(())
    }

    /// SequentialLR restart: `lr = b·γ^(milestones ≤ 0)`.
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        let c = pymath::bisect_right(&self.sorted, 0);
        let f = pymath::pow(self.cfg.gamma, c as f64, "multi_step.gamma")?;
        for (g, b) in groups.iter_mut().zip(&self.base_lrs) {
            g.lr = b * f;
        }
        self.t = 0;
        Ok(())
    }

    /// Only `gamma ** c` overflowing (a hugely repeated milestone) can raise.
    pub fn check_run(&self, steps: usize) -> Result<()> {
        let end = self.t.saturating_add(pymath::run_len(steps));
        for &m in &self.sorted {
            if m > self.t && m <= end {
                pymath::pow(self.cfg.gamma, self.count(m) as f64, "multi_step.gamma")?;
            }
        }
        Ok(())
    }
}

/// PyTorch's `ExponentialLR` on a set of groups.
#[derive(Clone, Debug)]
pub struct ExponentialLr {
    cfg: ExponentialCfg,
    base_lrs: Vec<f64>,
    pub(crate) t: i64,
}

impl ExponentialLr {
    /// Build and run step 0 (which changes nothing).
    pub fn new(groups: &mut [Group], cfg: ExponentialCfg) -> Result<ExponentialLr> {
        let mut s = ExponentialLr { cfg, base_lrs: base_lrs(groups), t: -1 };
        s.step(groups)?;
        Ok(s)
    }

    /// `t += 1`; at t ≥ 1, `lr ← lr·γ`.
    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        self.t += 1;
        if self.t != 0 {
            for g in groups.iter_mut() {
                g.lr *= self.cfg.gamma;
            }
        }
        Ok(())
    }

    /// SequentialLR restart: `lr = b·γ^0`.
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        let f = pymath::pow(self.cfg.gamma, 0.0, "exponential.gamma")?;
        for (g, b) in groups.iter_mut().zip(&self.base_lrs) {
            g.lr = b * f;
        }
        self.t = 0;
        Ok(())
    }
}
