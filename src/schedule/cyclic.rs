//! PyTorch's `CyclicLR` (Smith 2017): the lr cycles between `base_lr` and `max_lr` and, with
//! `cycle_momentum`, the momentum (or Adam's beta1) cycles the opposite way. Absolute: `lr = f(t)`.

use serde::{Deserialize, Serialize};

use super::group::{Group, PerGroup, base_lrs, require_momentum};
use super::pymath;
use crate::{Error, Result};

fn d_up() -> f64 {
    2000.0
}
fn d_gamma() -> f64 {
    1.0
}
fn d_true() -> bool {
    true
}
fn d_base_m() -> PerGroup {
    PerGroup::One(0.8)
}
fn d_max_m() -> PerGroup {
    PerGroup::One(0.9)
}

/// CyclicLR's built-in amplitude scalings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CyclicMode {
    /// a = 1.
    Triangular,
    /// a = 1/2^(cycle−1): the amplitude halves every cycle.
    Triangular2,
    /// a = γ^t (per iteration).
    ExpRange,
}

/// Whether the scale function sees the cycle number or the iteration. Only a custom scale function would
/// use it: the built-in modes force their own (PyTorch ignores the given value for them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleMode {
    Cycle,
    Iterations,
}

/// `CyclicLR(base_lr, max_lr, step_size_up=2000, step_size_down=None, mode='triangular', gamma=1.0,
/// scale_mode='cycle', cycle_momentum=True, base_momentum=0.8, max_momentum=0.9)`. With `L = up + down`
/// and `r = up/L`: `c = floor(1 + t/L)`, `x = 1 + t/L − c`, `s = x/r` if x ≤ r else `(x − 1)/(r − 1)`,
/// `lr = b + (max − b)·s·a`, `momentum = max_m − (max_m − base_m)·s·a`. The optimizer's lr is replaced
/// by `base_lr` at construction; the peak is at t = up, back at base at t = L.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CyclicCfg {
    pub base_lr: PerGroup,
    pub max_lr: PerGroup,
    #[serde(default = "d_up")]
    pub step_size_up: f64,
    #[serde(default)]
    pub step_size_down: Option<f64>,
    #[serde(default = "CyclicCfg::d_mode")]
    pub mode: CyclicMode,
    #[serde(default = "d_gamma")]
    pub gamma: f64,
    #[serde(default)]
    pub scale_mode: Option<ScaleMode>,
    #[serde(default = "d_true")]
    pub cycle_momentum: bool,
    #[serde(default = "d_base_m")]
    pub base_momentum: PerGroup,
    #[serde(default = "d_max_m")]
    pub max_momentum: PerGroup,
}

impl CyclicCfg {
    fn d_mode() -> CyclicMode {
        CyclicMode::Triangular
    }

    /// The PyTorch defaults around the two required bounds.
    pub fn new(base_lr: f64, max_lr: f64) -> CyclicCfg {
        CyclicCfg {
            base_lr: base_lr.into(),
            max_lr: max_lr.into(),
            step_size_up: d_up(),
            step_size_down: None,
            mode: CyclicMode::Triangular,
            gamma: d_gamma(),
            scale_mode: None,
            cycle_momentum: true,
            base_momentum: d_base_m(),
            max_momentum: d_max_m(),
        }
    }
}

/// PyTorch's `CyclicLR`.
#[derive(Clone, Debug)]
pub struct CyclicLr {
    mode: CyclicMode,
    gamma: f64,
    total_size: f64,
    step_ratio: f64,
    base_lrs: Vec<f64>,
    max_lrs: Vec<f64>,
    /// `(base_momentum, max_momentum)` per group when momentum cycles.
    momenta: Option<Vec<(f64, f64)>>,
    pub(crate) t: i64,
}

impl CyclicLr {
    /// Validate, set lr := base_lr (and momentum := max_momentum), run step 0.
    pub fn new(groups: &mut [Group], cfg: &CyclicCfg) -> Result<CyclicLr> {
        let n = groups.len();
        let bases = cfg.base_lr.expand(n, "cyclic.base_lr")?;
        let maxs = cfg.max_lr.expand(n, "cyclic.max_lr")?;
        let up = cfg.step_size_up;
        let down = cfg.step_size_down.unwrap_or(up);
        // PyTorch divides by up + down at construction and by up/(up + down) at step 0 (x = 0 ≤ r):
        // both are ZeroDivisionError there.
        if up + down == 0.0 || up == 0.0 {
            return Err(Error::Schedule(format!(
                "cyclic.step_size_up must be positive (got {up}, with step_size_down {down}: PyTorch raises ZeroDivisionError)"
            )));
        }
        let total_size = up + down;
        let step_ratio = pymath::div(up, total_size, "cyclic.step_size_up")?;
        let momenta = if cfg.cycle_momentum {
            require_momentum(groups, "cyclic")?;
            let b = cfg.base_momentum.expand(n, "cyclic.base_momentum")?;
            let m = cfg.max_momentum.expand(n, "cyclic.max_momentum")?;
            Some(b.into_iter().zip(m).collect::<Vec<_>>())
        } else {
            None
        };
        for (g, b) in groups.iter_mut().zip(&bases) {
            g.lr = *b;
        }
        if let Some(ms) = &momenta {
            for (g, (_, m)) in groups.iter_mut().zip(ms) {
                g.set_momentum(*m);
            }
        }
        // PyTorch's step 0 runs inside LRScheduler.__init__, whose base_lrs are the groups' initial_lr
        // (= base_lr unless an earlier scheduler set it); base_lr replaces them only afterwards.
        let init_bases = base_lrs(groups);
        let mut s = CyclicLr {
            mode: cfg.mode,
            gamma: cfg.gamma,
            total_size,
            step_ratio,
            base_lrs: init_bases,
            max_lrs: maxs,
            momenta,
            t: -1,
        };
        s.step(groups)?;
        s.base_lrs = bases;
        Ok(s)
    }

    fn apply(&self, groups: &mut [Group], t: i64) -> Result<()> {
        let q = t as f64 / self.total_size;
        let cycle = (1.0 + q).floor();
        let x = 1.0 + q - cycle;
        let s = if x <= self.step_ratio {
            pymath::div(x, self.step_ratio, "cyclic.step_size_up")?
        } else {
            pymath::div(x - 1.0, self.step_ratio - 1.0, "cyclic.step_size_down")?
        };
        let a = match self.mode {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / pymath::pow(2.0, cycle - 1.0, "cyclic")?,
            CyclicMode::ExpRange => pymath::pow(self.gamma, t as f64, "cyclic.gamma")?,
        };
        for ((g, b), m) in groups.iter_mut().zip(&self.base_lrs).zip(&self.max_lrs) {
            g.lr = b + (m - b) * s * a;
        }
        if let Some(ms) = &self.momenta {
            for (g, (bm, mm)) in groups.iter_mut().zip(ms) {
                g.set_momentum(mm - (mm - bm) * s * a);
            }
        }
        Ok(())
    }

    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        self.apply(groups, t)?;
        self.t = t;
        Ok(())
    }

    /// SequentialLR restart: the t = 0 value (absolute).
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        self.apply(groups, 0)?;
        self.t = 0;
        Ok(())
    }

    /// Whether it drives the momentum.
    pub fn cycles_momentum(&self) -> bool {
        self.momenta.is_some()
    }

    /// Only `gamma ** t` overflowing (exp_range with γ > 1) can raise after construction.
    pub fn check_run(&self, steps: usize) -> Result<()> {
        if self.mode == CyclicMode::ExpRange {
            let last = self.t.saturating_add(pymath::run_len(steps));
            pymath::pow(self.gamma, last as f64, "cyclic.gamma").map_err(|_| {
                Error::Schedule(format!(
                    "cyclic.gamma {} overflows within {steps} steps (gamma ** step); use gamma ≤ 1",
                    self.gamma
                ))
            })?;
        }
        Ok(())
    }
}
