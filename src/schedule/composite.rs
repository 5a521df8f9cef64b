//! Schedulers made of schedulers: PyTorch's `SequentialLR` (one child at a time, switching at milestones)
//! and `ChainedScheduler` (every child every step, in list order, on the same groups).

use serde::{Deserialize, Serialize};

use super::config::ScheduleConfig;
use super::dispatch::LrScheduler;
use super::group::Group;
use super::pymath::bisect_right;
use crate::{Error, Result};

/// `SequentialLR(schedulers, milestones)`: `len(milestones) = len(schedulers) − 1`, order not checked.
/// Each `step()`: `T += 1`, `i = bisect_right(milestones, T)`; if `milestones[i−1] == T` child i restarts
/// (t = 0, lr = its closed form at 0 from its base lrs), else child i steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequentialCfg {
    pub schedulers: Vec<ScheduleConfig>,
    pub milestones: Vec<i64>,
}

/// `ChainedScheduler(schedulers)`: construction changes nothing; `step()` steps every child in order.
/// Chainable children compound; absolute ones (LambdaLR, CyclicLR, …) overwrite what came before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainedCfg {
    pub schedulers: Vec<ScheduleConfig>,
}

fn check_children(children: &[LrScheduler], kind: &str) -> Result<()> {
    if children.is_empty() {
        return Err(Error::Schedule(format!("{kind}.schedulers must hold at least one scheduler (got none)")));
    }
    if let Some(i) = children.iter().position(|c| matches!(c, LrScheduler::Plateau(_))) {
        return Err(Error::Schedule(format!(
            "{kind}.schedulers[{i}] cannot be reduce_lr_on_plateau (it steps on a metric, not per step)"
        )));
    }
    Ok(())
}

/// PyTorch's `SequentialLR`.
#[derive(Clone, Debug)]
pub struct SequentialLr {
    pub(crate) children: Vec<LrScheduler>,
    milestones: Vec<i64>,
    pub(crate) t: i64,
}

impl SequentialLr {
    /// `children` were built on `groups` already (each ran its own step 0). As PyTorch: reset every lr to
    /// `initial_lr`, rewind every leaf's t, re-run step 0 of the first child only.
    pub fn new(groups: &mut [Group], children: Vec<LrScheduler>, milestones: Vec<i64>) -> Result<SequentialLr> {
        check_children(&children, "sequential")?;
        if milestones.len() != children.len() - 1 {
            return Err(Error::Schedule(format!(
                "sequential.milestones must have one entry fewer than schedulers ({} for {} schedulers; got {})",
                children.len() - 1,
                children.len(),
                milestones.len()
            )));
        }
        for g in groups.iter_mut() {
            g.lr = g.initial_lr.unwrap_or(g.lr);
        }
        let mut s = SequentialLr { children, milestones, t: 0 };
        for c in &mut s.children {
            c.rewind();
        }
        s.children[0].step(groups).map_err(|e| prefix(e, 0))?;
        // A milestone at 0 restarts its child right away (torch ≥ 2.15; older releases kept child 0's
        // value here, pytorch#185872).
        let i = bisect_right(&s.milestones, 0);
        if i > 0 && s.milestones[i - 1] == 0 {
            s.children[i].restart(groups).map_err(|e| prefix(e, i))?;
        }
        Ok(s)
    }

    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        let t = self.t + 1;
        let i = bisect_right(&self.milestones, t);
        let child = &mut self.children[i];
        if i > 0 && self.milestones[i - 1] == t {
            child.restart(groups).map_err(|e| prefix(e, i))?;
        } else {
            child.step(groups).map_err(|e| prefix(e, i))?;
        }
        self.t = t;
        Ok(())
    }

    /// Every error of the next `steps` steps, found by running a copy (restarts make the children's
    /// ranges depend on the milestones, which PyTorch does not even sort).
    pub fn check_run(&self, groups: &[Group], steps: usize) -> Result<()> {
        let (mut s, mut g) = (self.clone(), groups.to_vec());
        for k in 1..=steps {
            s.step(&mut g).map_err(|e| match e {
                Error::Schedule(m) => Error::Schedule(format!("{m} (at step {})", self.t + k as i64)),
                e => e,
            })?;
        }
        Ok(())
    }
}

fn prefix(e: Error, i: usize) -> Error {
    match e {
        Error::Schedule(m) if !m.starts_with("sequential") => {
            Error::Schedule(format!("sequential.schedulers[{i}]: {m}"))
        }
        e => e,
    }
}

/// PyTorch's `ChainedScheduler`.
#[derive(Clone, Debug)]
pub struct ChainedLr {
    pub(crate) children: Vec<LrScheduler>,
}

impl ChainedLr {
    /// `children` were built on `groups` already; nothing else happens.
    pub fn new(_groups: &mut [Group], children: Vec<LrScheduler>) -> Result<ChainedLr> {
        check_children(&children, "chained")?;
        Ok(ChainedLr { children })
    }

    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        for c in &mut self.children {
            c.step(groups)?;
        }
        Ok(())
    }

    /// Each child sees every step, so each checks the whole run itself.
    pub fn check_run(&self, groups: &[Group], steps: usize) -> Result<()> {
        for (i, c) in self.children.iter().enumerate() {
            c.check_run(groups, steps).map_err(|e| match e {
                Error::Schedule(m) => Error::Schedule(format!("chained.schedulers[{i}]: {m}")),
                e => e,
            })?;
        }
        Ok(())
    }
}
