//! PyTorch's `OneCycleLR` (Smith & Topin 2018): warm up from `max_lr/div_factor` to `max_lr`, anneal to
//! `initial/final_div_factor` (optionally back through the initial lr first: three-phase), with momentum
//! cycled the opposite way. Absolute, finite: `step()` may be called exactly `total_steps` times.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::group::{Group, PerGroup, require_momentum};
use super::pymath;
use crate::{Error, Result};

fn d_pct() -> f64 {
    0.3
}
fn d_true() -> bool {
    true
}
fn d_base_m() -> PerGroup {
    PerGroup::One(0.85)
}
fn d_max_m() -> PerGroup {
    PerGroup::One(0.95)
}
fn d_div() -> f64 {
    25.0
}
fn d_final_div() -> f64 {
    1e4
}

/// How each phase moves from its start value to its end value as `pct` goes 0 → 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    /// `to + (from − to)/2·(cos(π·pct) + 1)`.
    Cos,
    /// `(to − from)·pct + from`.
    Linear,
}

/// `OneCycleLR(max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
/// anneal_strategy='cos', cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
/// final_div_factor=1e4, three_phase=False)`. With T = total_steps (or epochs·steps_per_epoch),
/// `init = max_lr/div_factor`, `min = init/final_div_factor`, phases end at (two-phase) `p·T − 1`, `T − 1`
/// (init→max→min; momentum max_m→base_m→max_m) or (three-phase) `p·T − 1`, `2p·T − 2`, `T − 1`
/// (init→max→init→min; max_m→base_m→max_m→max_m). At t the first phase with `t ≤ end` (or the last) gives
/// `pct = (t − start)/(end − start)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneCycleCfg {
    pub max_lr: PerGroup,
    #[serde(default)]
    pub total_steps: Option<i64>,
    #[serde(default)]
    pub epochs: Option<i64>,
    #[serde(default)]
    pub steps_per_epoch: Option<i64>,
    #[serde(default = "d_pct")]
    pub pct_start: f64,
    #[serde(default = "OneCycleCfg::d_anneal")]
    pub anneal_strategy: Anneal,
    #[serde(default = "d_true")]
    pub cycle_momentum: bool,
    #[serde(default = "d_base_m")]
    pub base_momentum: PerGroup,
    #[serde(default = "d_max_m")]
    pub max_momentum: PerGroup,
    #[serde(default = "d_div")]
    pub div_factor: f64,
    #[serde(default = "d_final_div")]
    pub final_div_factor: f64,
    #[serde(default)]
    pub three_phase: bool,
}

impl OneCycleCfg {
    fn d_anneal() -> Anneal {
        Anneal::Cos
    }

    /// PyTorch's defaults around `max_lr` and `total_steps`.
    pub fn new(max_lr: f64, total_steps: i64) -> OneCycleCfg {
        OneCycleCfg {
            max_lr: max_lr.into(),
            total_steps: Some(total_steps),
            epochs: None,
            steps_per_epoch: None,
            pct_start: d_pct(),
            anneal_strategy: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: d_base_m(),
            max_momentum: d_max_m(),
            div_factor: d_div(),
            final_div_factor: d_final_div(),
            three_phase: false,
        }
    }

    /// T, validated as PyTorch does (a positive total_steps, else positive epochs and steps_per_epoch).
    pub fn total(&self) -> Result<i64> {
        if let Some(t) = self.total_steps {
            if t <= 0 {
                return Err(Error::Schedule(format!("one_cycle.total_steps must be a positive integer (got {t})")));
            }
            return Ok(t);
        }
        match (self.epochs, self.steps_per_epoch) {
            (Some(e), Some(s)) => {
                if e <= 0 {
                    return Err(Error::Schedule(format!("one_cycle.epochs must be a positive integer (got {e})")));
                }
                if s <= 0 {
                    return Err(Error::Schedule(format!(
                        "one_cycle.steps_per_epoch must be a positive integer (got {s})"
                    )));
                }
                e.checked_mul(s).ok_or_else(|| Error::Schedule("one_cycle.epochs × steps_per_epoch overflows".into()))
            }
            _ => Err(Error::Schedule(
                "one_cycle needs total_steps (a positive integer), or both epochs and steps_per_epoch".into(),
            )),
        }
    }
}

/// Which group value a phase starts or ends at.
#[derive(Clone, Copy, Debug)]
enum Lr {
    Init,
    Max,
    Min,
}

#[derive(Clone, Copy, Debug)]
struct Phase {
    end: f64,
    lr: (Lr, Lr),
    /// Momentum from/to: `true` = max_momentum, `false` = base_momentum.
    mom: (bool, bool),
}

#[derive(Clone, Copy, Debug)]
struct GroupVals {
    init: f64,
    max: f64,
    min: f64,
    base_m: f64,
    max_m: f64,
}

impl GroupVals {
    fn lr(&self, which: Lr) -> f64 {
        match which {
            Lr::Init => self.init,
            Lr::Max => self.max,
            Lr::Min => self.min,
        }
    }
    fn m(&self, max: bool) -> f64 {
        if max { self.max_m } else { self.base_m }
    }
}

/// PyTorch's `OneCycleLR`.
#[derive(Clone, Debug)]
pub struct OneCycleLr {
    total: i64,
    anneal: Anneal,
    phases: Vec<Phase>,
    vals: Vec<GroupVals>,
    cycle_momentum: bool,
    pub(crate) t: i64,
}

impl OneCycleLr {
    /// Validate, overwrite each group's `initial_lr` with `max_lr/div_factor`, set momentum to max_momentum,
    /// run step 0 (a zero-width first phase is ZeroDivisionError here).
    pub fn new(groups: &mut [Group], cfg: &OneCycleCfg) -> Result<OneCycleLr> {
        let total = cfg.total()?;
        let p = cfg.pct_start;
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Schedule(format!("one_cycle.pct_start must be a number in [0, 1] (got {p})")));
        }
        let tf = total as f64;
        let phases = if cfg.three_phase {
            vec![
                Phase { end: p * tf - 1.0, lr: (Lr::Init, Lr::Max), mom: (true, false) },
                Phase { end: 2.0 * p * tf - 2.0, lr: (Lr::Max, Lr::Init), mom: (false, true) },
                Phase { end: tf - 1.0, lr: (Lr::Init, Lr::Min), mom: (true, true) },
            ]
        } else {
            vec![
                Phase { end: p * tf - 1.0, lr: (Lr::Init, Lr::Max), mom: (true, false) },
                Phase { end: tf - 1.0, lr: (Lr::Max, Lr::Min), mom: (false, true) },
            ]
        };
        let n = groups.len();
        let maxs = cfg.max_lr.expand(n, "one_cycle.max_lr")?;
        let mut vals = Vec::with_capacity(n);
        for &max in &maxs {
            let init = pymath::div(max, cfg.div_factor, "one_cycle.div_factor")
                .map_err(|_| Error::Schedule("one_cycle.div_factor must be nonzero (got 0)".into()))?;
            let min = pymath::div(init, cfg.final_div_factor, "one_cycle.final_div_factor")
                .map_err(|_| Error::Schedule("one_cycle.final_div_factor must be nonzero (got 0)".into()))?;
            vals.push(GroupVals { init, max, min, base_m: 0.0, max_m: 0.0 });
        }
        if cfg.cycle_momentum {
            require_momentum(groups, "one_cycle")?;
            let b = cfg.base_momentum.expand(n, "one_cycle.base_momentum")?;
            let m = cfg.max_momentum.expand(n, "one_cycle.max_momentum")?;
            for ((v, b), m) in vals.iter_mut().zip(b).zip(m) {
                v.base_m = b;
                v.max_m = m;
            }
        }
        let mut s =
            OneCycleLr { total, anneal: cfg.anneal_strategy, phases, vals, cycle_momentum: cfg.cycle_momentum, t: -1 };
        // Checked before touching the groups, so a rejected config leaves them as they were.
        for v in &s.vals {
            s.value(0, v).map_err(|e| s.explain(e))?;
        }
        for (g, v) in groups.iter_mut().zip(&s.vals) {
            g.initial_lr = Some(v.init);
            if s.cycle_momentum {
                g.set_momentum(v.max_m);
            }
        }
        s.step(groups).map_err(|e| s.explain(e))?;
        Ok(s)
    }

    fn anneal(&self, from: f64, to: f64, pct: f64) -> f64 {
        match self.anneal {
            Anneal::Cos => to + (from - to) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (to - from) * pct + from,
        }
    }

    /// (lr, momentum) of a group with values `v` at step t.
    fn value(&self, t: i64, v: &GroupVals) -> Result<(f64, f64)> {
        let tf = t as f64;
        let mut start = 0.0;
        let last = self.phases.len() - 1;
        for (k, ph) in self.phases.iter().enumerate() {
            if tf <= ph.end || k == last {
                let pct = pymath::div(tf - start, ph.end - start, "one_cycle.pct_start")?;
                let lr = self.anneal(v.lr(ph.lr.0), v.lr(ph.lr.1), pct);
                let m = if self.cycle_momentum { self.anneal(v.m(ph.mom.0), v.m(ph.mom.1), pct) } else { 0.0 };
                return Ok((lr, m));
            }
            start = ph.end;
        }
        Err(Error::Schedule("one_cycle: no phase".into())) // unreachable: the last phase always matches
    }

    fn explain(&self, e: Error) -> Error {
        match e {
            Error::Schedule(m) if m.contains("division by zero") => Error::Schedule(format!(
                "one_cycle.pct_start gives a zero-width phase for total_steps {} (pct_start·total_steps must not be 1, and a phase must not end where the previous one ends): {m}",
                self.total
            )),
            e => e,
        }
    }

    /// `t += 1`; t > total_steps is PyTorch's ValueError "Tried to step t times".
    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        if t > self.total {
            return Err(Error::Schedule(format!(
                "one_cycle.total_steps must be at least the number of steps (tried to step {t} times; total_steps is {})",
                self.total
            )));
        }
        for (g, v) in groups.iter_mut().zip(&self.vals) {
            let (lr, m) = self.value(t, v)?;
            g.lr = lr;
            if self.cycle_momentum {
                g.set_momentum(m);
            }
        }
        self.t = t;
        Ok(())
    }

    /// SequentialLR restart: the t = 0 values.
    pub fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        self.t = -1;
        self.step(groups)
    }

    /// Whether it drives the momentum.
    pub fn cycles_momentum(&self) -> bool {
        self.cycle_momentum
    }

    /// Overrun (more steps than total_steps allows), or a zero-width phase that the run enters.
    pub fn check_run(&self, steps: usize) -> Result<()> {
        let last = self.t.saturating_add(pymath::run_len(steps));
        if last > self.total {
            return Err(Error::Schedule(format!(
                "one_cycle.total_steps must be at least the number of steps (got {} for a run of {steps} steps{})",
                self.total,
                if self.t > 0 { format!(" from step {}", self.t) } else { String::new() }
            )));
        }
        // Phase k serves the t with t > every earlier phase's end and t ≤ its own end (the last phase: no
        // upper bound). Only a zero-width phase divides by zero, so find the first t of the run it serves.
        let mut lo = f64::NEG_INFINITY;
        let mut start = 0.0f64;
        for (k, ph) in self.phases.iter().enumerate() {
            let hi = if k == self.phases.len() - 1 { f64::INFINITY } else { ph.end };
            if ph.end == start {
                let above = if lo.is_finite() { lo.floor() as i64 + 1 } else { i64::MIN };
                let first = (self.t + 1).max(above);
                if first <= last && (first as f64) <= hi {
                    return Err(self.explain(Error::Schedule(format!("step {first}: float division by zero"))));
                }
            }
            lo = lo.max(ph.end);
            start = ph.end;
        }
        Ok(())
    }
}
