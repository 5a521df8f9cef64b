//! [`Scheduler`]: what the training loop holds. It owns the optimizer's param groups (one for the CLI and
//! the sample CNN) and the PyTorch scheduler acting on them, and answers "which lr and momentum does the
//! next optimizer step use" — the values written into the GPU update kernel's uniform.

use super::config::ScheduleConfig;
use super::dispatch::LrScheduler;
use super::group::Group;
use super::state::SchedulerState;
use crate::{Error, Result};

/// A learning-rate (and momentum) schedule in PyTorch's driver order: build, then per optimizer step use
/// [`Scheduler::lr`] / [`Scheduler::momentum`] and call [`Scheduler::step`] after it.
#[derive(Clone, Debug)]
pub struct Scheduler {
    groups: Vec<Group>,
    inner: Option<LrScheduler>,
}

impl Scheduler {
    /// Build for one SGD param group (`lr = base_lr`, `momentum`) and run PyTorch's step 0, validating
    /// everything PyTorch validates at construction.
    pub fn new(cfg: &ScheduleConfig, base_lr: f64, momentum: f64) -> Result<Scheduler> {
        Scheduler::with_groups(cfg, vec![Group::sgd(base_lr, momentum)])
    }

    /// Build on the given param groups (each with its own base lr; Adam-style groups have betas).
    pub fn with_groups(cfg: &ScheduleConfig, mut groups: Vec<Group>) -> Result<Scheduler> {
        if groups.is_empty() {
            return Err(Error::Schedule("a scheduler needs at least one param group".into()));
        }
        let inner = LrScheduler::build(cfg, &mut groups)?;
        Ok(Scheduler { groups, inner: Some(inner) })
    }

    /// Wrap a hand-built [`LrScheduler`] (closures, custom groups) with the groups it was built on.
    pub fn from_parts(groups: Vec<Group>, inner: LrScheduler) -> Result<Scheduler> {
        if groups.is_empty() {
            return Err(Error::Schedule("a scheduler needs at least one param group".into()));
        }
        Ok(Scheduler { groups, inner: Some(inner) })
    }

    /// Fixed lr and momentum (no scheduler).
    pub fn fixed(lr: f64, momentum: f64) -> Scheduler {
        Scheduler { groups: vec![Group::sgd(lr, momentum)], inner: None }
    }

    /// Fixed values for the given param groups (no scheduler).
    pub fn fixed_groups(groups: Vec<Group>) -> Scheduler {
        Scheduler { groups, inner: None }
    }

    /// Learning rate in effect for the next optimizer step (first group).
    #[inline]
    pub fn lr(&self) -> f64 {
        self.groups[0].lr
    }

    /// Momentum (Adam: beta1) in effect for the next optimizer step (first group).
    #[inline]
    pub fn momentum(&self) -> f64 {
        self.groups[0].momentum_value()
    }

    /// All param groups, as the optimizer would hold them now.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The underlying PyTorch scheduler (`None` for a fixed lr).
    pub fn inner(&self) -> Option<&LrScheduler> {
        self.inner.as_ref()
    }

    /// Whether the momentum varies (cyclic / one_cycle with cycle_momentum, also inside a composite).
    pub fn cycles_momentum(&self) -> bool {
        self.inner.as_ref().is_some_and(LrScheduler::cycles_momentum)
    }

    /// Whether this scheduler steps on a metric (reduce_lr_on_plateau) rather than per optimizer step.
    pub fn needs_metric(&self) -> bool {
        matches!(self.inner, Some(LrScheduler::Plateau(_)))
    }

    /// Advance once per optimizer step (a no-op for a fixed lr and for reduce_lr_on_plateau).
    #[inline]
    pub fn step(&mut self) -> Result<()> {
        match &mut self.inner {
            None | Some(LrScheduler::Plateau(_)) => Ok(()),
            Some(s) => s.step(&mut self.groups),
        }
    }

    /// reduce_lr_on_plateau: report the metric observed after the latest optimizer step.
    pub fn step_metric(&mut self, metric: f64) -> Result<()> {
        match &mut self.inner {
            Some(s @ LrScheduler::Plateau(_)) => s.step_metric(&mut self.groups, metric),
            _ => Err(Error::Usage("step_metric: only reduce_lr_on_plateau steps on a metric".into())),
        }
    }

    /// Reject up front a run of `steps` optimizer steps (each followed by a `step()`, as in PyTorch) that
    /// this schedule cannot serve: every error PyTorch would raise at any of those `step()` calls (StepLR
    /// step_size 0, ConstantLR factor 0 at total_iters, CosineAnnealingLR T_max 0, OneCycleLR overrun or a
    /// zero-width phase, …). Analytic except inside SequentialLR, which runs a copy.
    pub fn check_run(&self, steps: usize) -> Result<()> {
        match &self.inner {
            None => Ok(()),
            Some(s) => s.check_run(&self.groups, steps),
        }
    }

    /// The metrics a run of `steps` feeds to reduce_lr_on_plateau (an [`Error::Usage`] if fewer than
    /// `steps`); an empty slice for the other kinds, which do not use them.
    pub fn check_metrics<'m>(&self, steps: usize, metrics: Option<&'m [f64]>) -> Result<&'m [f64]> {
        if !self.needs_metric() {
            return Ok(&[]);
        }
        match metrics {
            Some(m) if m.len() >= steps => Ok(m),
            Some(m) => Err(Error::Usage(format!(
                "reduce_lr_on_plateau needs one metric value per step: got {} values for {steps} steps",
                m.len()
            ))),
            None => Err(Error::Usage("reduce_lr_on_plateau needs one metric value per step (none given)".into())),
        }
    }

    /// Serializable state; [`Scheduler::restore`] continues bit-identically from it.
    pub fn state(&self) -> SchedulerState {
        SchedulerState { groups: self.groups.clone(), scheduler: self.inner.as_ref().map(LrScheduler::state) }
    }

    /// Rebuild from the same config, lr and momentum as the saved run, then load its state.
    pub fn restore(cfg: &ScheduleConfig, base_lr: f64, momentum: f64, state: &SchedulerState) -> Result<Scheduler> {
        Scheduler::new(cfg, base_lr, momentum)?.load(state)
    }

    /// [`Scheduler::restore`] for a scheduler built with [`Scheduler::with_groups`].
    pub fn restore_groups(cfg: &ScheduleConfig, groups: Vec<Group>, state: &SchedulerState) -> Result<Scheduler> {
        Scheduler::with_groups(cfg, groups)?.load(state)
    }

    /// Load a saved state into this freshly built scheduler.
    pub fn load(mut self, state: &SchedulerState) -> Result<Scheduler> {
        if state.groups.len() != self.groups.len() {
            return Err(Error::Schedule(format!(
                "saved scheduler state has {} param groups but the run has {}",
                state.groups.len(),
                self.groups.len()
            )));
        }
        match (&mut self.inner, &state.scheduler) {
            (Some(s), Some(st)) => s.load_state(st)?,
            (None, None) => {}
            _ => {
                return Err(Error::Schedule(
                    "saved scheduler state does not match the schedule (fixed vs scheduled)".into(),
                ));
            }
        }
        self.groups = state.groups.clone();
        Ok(self)
    }
}

/// The whole schedule as `(lr, momentum)` per optimizer step 0..steps−1 for one SGD group, in PyTorch's
/// driver order (record, then `step()`; reduce_lr_on_plateau gets `metrics[s]` after step s). The run is
/// checked first ([`Scheduler::check_run`]), so a schedule PyTorch would fail on mid-way is an `Err` here.
pub fn sequence(
    cfg: &ScheduleConfig,
    base_lr: f64,
    momentum: f64,
    steps: usize,
    metrics: Option<&[f64]>,
) -> Result<Vec<(f64, f64)>> {
    let mut out = Vec::with_capacity(steps);
    drive(Scheduler::new(cfg, base_lr, momentum)?, steps, metrics, |_, s| {
        out.push((s.lr(), s.momentum()));
        Ok(())
    })?;
    Ok(out)
}

/// [`sequence`] for any scheduler: every group's state before each of `steps` optimizer steps.
pub fn sequence_groups(s: Scheduler, steps: usize, metrics: Option<&[f64]>) -> Result<Vec<Vec<Group>>> {
    let mut out = Vec::with_capacity(steps);
    drive(s, steps, metrics, |_, s| {
        out.push(s.groups.clone());
        Ok(())
    })?;
    Ok(out)
}

/// PyTorch's driver loop: check the run, then for k in 0..steps: `record(k, s)` (the values optimizer step k
/// uses), then `step()` — or, for reduce_lr_on_plateau, `step_metric(metrics[k])` (an [`Error::Usage`] if
/// fewer than `steps` metrics are given).
pub fn drive(
    mut s: Scheduler,
    steps: usize,
    metrics: Option<&[f64]>,
    mut record: impl FnMut(usize, &Scheduler) -> Result<()>,
) -> Result<()> {
    s.check_run(steps)?;
    let metrics = s.check_metrics(steps, metrics)?;
    for k in 0..steps {
        record(k, &s)?;
        match metrics.get(k) {
            Some(&m) => s.step_metric(m)?,
            None => s.step()?,
        }
    }
    Ok(())
}
