//! Schedules given by a factor function of the step: PyTorch's `LambdaLR` (absolute, `lr = b·f(t)`) and
//! `MultiplicativeLR` (chainable, `lr ← lr·f(t)`). The function is a Rust closure (the library API) or one
//! of the built-in factors that the JSON kinds from other libraries compile to (see [`Factor`]).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::group::{Group, base_lrs};
use super::hf::{CosineWithWarmupCfg, InverseSqrtCfg};
use super::noam::NoamCfg;
use super::optax::{SgdrCfg, WarmupCosineDecayCfg};
use crate::{Error, Result};

/// A user closure `f(t)`, t = 0, 1, … (PyTorch passes `last_epoch`).
pub type LrFn = Arc<dyn Fn(i64) -> f64 + Send + Sync>;

/// The factor function of a [`LambdaLr`] or [`MultiplicativeLr`].
#[derive(Clone)]
pub enum Factor {
    /// A closure from the Rust API. Not serialized: saved state is just the counter.
    Fn(LrFn),
    /// A constant factor (`multiplicative` in JSON).
    Const(f64),
    /// HF `get_cosine_schedule_with_warmup`.
    CosineWithWarmup(CosineWithWarmupCfg),
    /// HF `get_inverse_sqrt_schedule`.
    InverseSqrt(InverseSqrtCfg),
    /// Noam (Burn convention: the lr at t uses s = t + 1).
    Noam(NoamCfg),
    /// optax `warmup_cosine_decay_schedule`.
    WarmupCosineDecay(WarmupCosineDecayCfg),
    /// optax `sgdr_schedule`.
    Sgdr(SgdrCfg),
}

impl fmt::Debug for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Factor::Fn(_) => f.write_str("Fn(<closure>)"),
            Factor::Const(c) => write!(f, "Const({c})"),
            Factor::CosineWithWarmup(c) => write!(f, "{c:?}"),
            Factor::InverseSqrt(c) => write!(f, "{c:?}"),
            Factor::Noam(c) => write!(f, "{c:?}"),
            Factor::WarmupCosineDecay(c) => write!(f, "{c:?}"),
            Factor::Sgdr(c) => write!(f, "{c:?}"),
        }
    }
}

impl Factor {
    /// Wrap a closure.
    pub fn from_fn(f: impl Fn(i64) -> f64 + Send + Sync + 'static) -> Factor {
        Factor::Fn(Arc::new(f))
    }

    /// `f(t)`.
    #[inline]
    pub fn at(&self, t: i64) -> Result<f64> {
        match self {
            Factor::Fn(f) => Ok(f(t)),
            Factor::Const(c) => Ok(*c),
            Factor::CosineWithWarmup(c) => Ok(c.factor(t)),
            Factor::InverseSqrt(c) => c.factor(t),
            Factor::Noam(c) => c.factor(t),
            Factor::WarmupCosineDecay(c) => Ok(c.value(t)),
            Factor::Sgdr(c) => Ok(c.value(t)),
        }
    }
}

/// One factor for all groups, or one per group (PyTorch: a list must have exactly one entry per group).
fn per_group(factors: Vec<Factor>, n: usize, kind: &str) -> Result<Vec<Factor>> {
    match factors.len() {
        1 => Ok(vec![factors[0].clone(); n]),
        k if k == n => Ok(factors),
        k => {
            Err(Error::Schedule(format!("{kind}.lr_lambda must have 1 or {n} entries, one per param group (got {k})")))
        }
    }
}

/// Serializable part of the JSON `multiplicative` kind: MultiplicativeLR with a constant factor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiplicativeCfg {
    pub factor: f64,
}

/// PyTorch's `LambdaLR(lr_lambda)`: `lr = b_i·f_i(t)` at every t, including t = 0 during construction.
/// Absolute: inside a ChainedScheduler it discards what earlier children did.
#[derive(Clone, Debug)]
pub struct LambdaLr {
    factors: Vec<Factor>,
    base_lrs: Vec<f64>,
    pub(crate) t: i64,
}

impl LambdaLr {
    /// `factors`: one for every group, or one per group.
    pub fn new(groups: &mut [Group], factors: Vec<Factor>) -> Result<LambdaLr> {
        let factors = per_group(factors, groups.len(), "lambda")?;
        let mut s = LambdaLr { factors, base_lrs: base_lrs(groups), t: -1 };
        s.step(groups)?;
        Ok(s)
    }

    /// Convenience: one closure shared by every group.
    pub fn with_fn(groups: &mut [Group], f: impl Fn(i64) -> f64 + Send + Sync + 'static) -> Result<LambdaLr> {
        LambdaLr::new(groups, vec![Factor::from_fn(f)])
    }

    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        self.apply(groups, t)?;
        self.t = t;
        Ok(())
    }

    fn apply(&self, groups: &mut [Group], t: i64) -> Result<()> {
        for ((g, b), f) in groups.iter_mut().zip(&self.base_lrs).zip(&self.factors) {
            g.lr = b * f.at(t)?;
        }
        Ok(())
    }

    /// SequentialLR restart: `lr = b·f(0)`.
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        self.apply(groups, 0)?;
        self.t = 0;
        Ok(())
    }
}

/// PyTorch's `MultiplicativeLR(lr_lambda)`: t = 0 unchanged; t ≥ 1: `lr ← lr·f(t)` with f at the new t.
/// Closed form `b·∏_{k=1..t} f(k)`.
#[derive(Clone, Debug)]
pub struct MultiplicativeLr {
    factors: Vec<Factor>,
    pub(crate) t: i64,
}

impl MultiplicativeLr {
    /// `factors`: one for every group, or one per group.
    pub fn new(groups: &mut [Group], factors: Vec<Factor>) -> Result<MultiplicativeLr> {
        let factors = per_group(factors, groups.len(), "multiplicative")?;
        base_lrs(groups);
        let mut s = MultiplicativeLr { factors, t: -1 };
        s.step(groups)?;
        Ok(s)
    }

    /// Convenience: one closure shared by every group.
    pub fn with_fn(groups: &mut [Group], f: impl Fn(i64) -> f64 + Send + Sync + 'static) -> Result<MultiplicativeLr> {
        MultiplicativeLr::new(groups, vec![Factor::from_fn(f)])
    }

    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        if t > 0 {
            for (g, f) in groups.iter_mut().zip(&self.factors) {
                g.lr *= f.at(t)?;
            }
        }
        self.t = t;
        Ok(())
    }

    /// SequentialLR restart: PyTorch has no closed form here and applies the t = 0 rule (unchanged lr).
    /// Version-sensitive in PyTorch; schedules.md advises against it.
    pub fn restart(&mut self, _groups: &mut [Group]) -> Result<()> {
        self.t = 0;
        Ok(())
    }
}
