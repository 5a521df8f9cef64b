//! PyTorch's `ReduceLROnPlateau`: cut the lr by `factor` when a metric stops improving. It has no step 0 and
//! steps only on a metric; the cut multiplies the *current* lr (relative, on demand).

use serde::{Deserialize, Serialize};

use super::group::{Group, PerGroup};
use super::pymath::py_max;
use crate::{Error, Result};

fn d_factor() -> f64 {
    0.1
}
fn d_patience() -> i64 {
    10
}
fn d_threshold() -> f64 {
    1e-4
}
fn d_min_lr() -> PerGroup {
    PerGroup::One(0.0)
}
fn d_eps() -> f64 {
    1e-8
}

/// Whether lower (`min`, a loss) or higher (`max`, an accuracy) metrics are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateauMode {
    Min,
    Max,
}

/// Whether `threshold` is relative to the best value or absolute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    Rel,
    Abs,
}

/// `ReduceLROnPlateau(mode='min', factor=0.1, patience=10, threshold=1e-4, threshold_mode='rel', cooldown=0,
/// min_lr=0, eps=1e-8)`, factor < 1. `step(metric)`:
/// 1. improved (strict: min/rel `m < best·(1−thr)`, min/abs `m < best − thr`, max/rel `m > best·(1+thr)`,
///    max/abs `m > best + thr`) → `best = m, bad = 0`, else `bad += 1`;
/// 2. in cooldown → `cd −= 1, bad = 0`;
/// 3. `bad > patience` → each group: `new = max(lr·factor, min_lr_i)`, applied only if `lr − new > eps`;
///    then `cd = cooldown, bad = 0`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateauCfg {
    #[serde(default = "PlateauCfg::d_mode")]
    pub mode: PlateauMode,
    #[serde(default = "d_factor")]
    pub factor: f64,
    #[serde(default = "d_patience")]
    pub patience: i64,
    #[serde(default = "d_threshold")]
    pub threshold: f64,
    #[serde(default = "PlateauCfg::d_tmode")]
    pub threshold_mode: ThresholdMode,
    #[serde(default)]
    pub cooldown: i64,
    #[serde(default = "d_min_lr")]
    pub min_lr: PerGroup,
    #[serde(default = "d_eps")]
    pub eps: f64,
}

impl PlateauCfg {
    fn d_mode() -> PlateauMode {
        PlateauMode::Min
    }
    fn d_tmode() -> ThresholdMode {
        ThresholdMode::Rel
    }
}

impl Default for PlateauCfg {
    fn default() -> Self {
        PlateauCfg {
            mode: PlateauMode::Min,
            factor: d_factor(),
            patience: d_patience(),
            threshold: d_threshold(),
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: d_min_lr(),
            eps: d_eps(),
        }
    }
}

/// PyTorch's `ReduceLROnPlateau`.
#[derive(Clone, Debug)]
pub struct PlateauLr {
    cfg: PlateauCfg,
    min_lrs: Vec<f64>,
    pub(crate) t: i64,
    pub(crate) best: f64,
    pub(crate) num_bad: i64,
    pub(crate) cooldown_counter: i64,
}

impl PlateauLr {
    /// Validate (factor < 1, one min_lr per group); changes nothing (no step 0, no `initial_lr`).
    pub fn new(groups: &mut [Group], cfg: PlateauCfg) -> Result<PlateauLr> {
        if cfg.factor >= 1.0 {
            return Err(Error::Schedule(format!("reduce_lr_on_plateau.factor must be < 1 (got {})", cfg.factor)));
        }
        let min_lrs = cfg.min_lr.expand(groups.len(), "reduce_lr_on_plateau.min_lr")?;
        let best = match cfg.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        Ok(PlateauLr { cfg, min_lrs, t: 0, best, num_bad: 0, cooldown_counter: 0 })
    }

    fn is_better(&self, a: f64) -> bool {
        let (best, thr) = (self.best, self.cfg.threshold);
        match (self.cfg.mode, self.cfg.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - thr),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - thr,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (thr + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + thr,
        }
    }

    /// `step(metric)`: the metric observed after the latest optimizer step.
    pub fn step_metric(&mut self, groups: &mut [Group], metric: f64) {
        self.t += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad = 0;
        } else {
            self.num_bad += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad = 0;
        }
        if self.num_bad > self.cfg.patience {
            for (g, min_lr) in groups.iter_mut().zip(&self.min_lrs) {
                let old = g.lr;
                let new = py_max(old * self.cfg.factor, *min_lr);
                if old - new > self.cfg.eps {
                    g.lr = new;
                }
            }
            self.cooldown_counter = self.cfg.cooldown;
            self.num_bad = 0;
        }
    }
}
