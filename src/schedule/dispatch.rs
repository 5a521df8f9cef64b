//! [`LrScheduler`]: any PyTorch scheduler acting on `&mut [Group]`, one enum over the families (static
//! dispatch: no allocation and no virtual call per step), built from a [`ScheduleConfig`] or by hand.

use super::composite::{ChainedLr, SequentialLr};
use super::config::ScheduleConfig;
use super::cosine::{CosineAnnealingLr, WarmRestartsLr};
use super::cyclic::CyclicLr;
use super::group::Group;
use super::lambda::{Factor, LambdaLr, MultiplicativeLr};
use super::linear::{ConstantLr, LinearLr, PolynomialLr};
use super::one_cycle::OneCycleLr;
use super::plateau::PlateauLr;
use super::state::SchedState;
use super::step::{ExponentialLr, MultiStepLr, StepLr};
use crate::{Error, Result};

/// One PyTorch scheduler on a set of param groups. Every variant's constructor runs PyTorch's step 0.
#[derive(Clone, Debug)]
pub enum LrScheduler {
    Lambda(LambdaLr),
    Multiplicative(MultiplicativeLr),
    Step(StepLr),
    MultiStep(MultiStepLr),
    Constant(ConstantLr),
    Linear(LinearLr),
    Exponential(ExponentialLr),
    Polynomial(PolynomialLr),
    CosineAnnealing(CosineAnnealingLr),
    WarmRestarts(WarmRestartsLr),
    Cyclic(CyclicLr),
    OneCycle(OneCycleLr),
    Plateau(PlateauLr),
    Sequential(SequentialLr),
    Chained(ChainedLr),
}

/// The counter of every variant that keeps only `t` as state.
macro_rules! counter {
    ($s:expr, $x:ident => $e:expr, $other:expr) => {
        match $s {
            LrScheduler::Lambda($x) => $e,
            LrScheduler::Multiplicative($x) => $e,
            LrScheduler::Step($x) => $e,
            LrScheduler::MultiStep($x) => $e,
            LrScheduler::Constant($x) => $e,
            LrScheduler::Linear($x) => $e,
            LrScheduler::Exponential($x) => $e,
            LrScheduler::Polynomial($x) => $e,
            LrScheduler::CosineAnnealing($x) => $e,
            LrScheduler::Cyclic($x) => $e,
            LrScheduler::OneCycle($x) => $e,
            _ => $other,
        }
    };
}

fn prefixed(e: Error, p: &str) -> Error {
    match e {
        Error::Schedule(m) => Error::Schedule(format!("{p}: {m}")),
        e => e,
    }
}

impl LrScheduler {
    /// Build the scheduler a config describes on `groups` (running its step 0, validating what PyTorch
    /// validates at construction, plus the parameters of the non-PyTorch kinds).
    pub fn build(cfg: &ScheduleConfig, groups: &mut [Group]) -> Result<LrScheduler> {
        use ScheduleConfig as C;
        Ok(match cfg {
            C::Constant(c) => LrScheduler::Constant(ConstantLr::new(groups, c.clone())?),
            C::Linear(c) => LrScheduler::Linear(LinearLr::new(groups, c.clone())?),
            C::Step(c) => LrScheduler::Step(StepLr::new(groups, c.clone())?),
            C::MultiStep(c) => LrScheduler::MultiStep(MultiStepLr::new(groups, c.clone())?),
            C::Exponential(c) => LrScheduler::Exponential(ExponentialLr::new(groups, c.clone())?),
            C::Polynomial(c) => LrScheduler::Polynomial(PolynomialLr::new(groups, c.clone())?),
            C::Multiplicative(c) => {
                LrScheduler::Multiplicative(MultiplicativeLr::new(groups, vec![Factor::Const(c.factor)])?)
            }
            C::CosineAnnealing(c) => LrScheduler::CosineAnnealing(CosineAnnealingLr::new(groups, c.clone())?),
            C::CosineAnnealingWarmRestarts(c) => LrScheduler::WarmRestarts(WarmRestartsLr::new(groups, c.clone())?),
            C::Cyclic(c) => LrScheduler::Cyclic(CyclicLr::new(groups, c)?),
            C::OneCycle(c) => LrScheduler::OneCycle(OneCycleLr::new(groups, c)?),
            C::ReduceLrOnPlateau(c) => LrScheduler::Plateau(PlateauLr::new(groups, c.clone())?),
            C::Sequential(c) => {
                let children = build_children(&c.schedulers, groups, "sequential")?;
                LrScheduler::Sequential(SequentialLr::new(groups, children, c.milestones.clone())?)
            }
            C::Chained(c) => {
                let children = build_children(&c.schedulers, groups, "chained")?;
                LrScheduler::Chained(ChainedLr::new(groups, children)?)
            }
            C::CosineWithWarmup(c) => {
                LrScheduler::Lambda(LambdaLr::new(groups, vec![Factor::CosineWithWarmup(c.clone())])?)
            }
            C::InverseSqrt(c) => {
                c.validate()?;
                LrScheduler::Lambda(LambdaLr::new(groups, vec![Factor::InverseSqrt(c.clone())])?)
            }
            C::Noam(c) => {
                c.validate()?;
                LrScheduler::Lambda(LambdaLr::new(groups, vec![Factor::Noam(c.clone())])?)
            }
            C::WarmupCosineDecay(c) => {
                c.validate("warmup_cosine_decay")?;
                LrScheduler::Lambda(LambdaLr::new(groups, vec![Factor::WarmupCosineDecay(c.clone())])?)
            }
            C::Sgdr(c) => {
                c.validate()?;
                LrScheduler::Lambda(LambdaLr::new(groups, vec![Factor::Sgdr(c.clone())])?)
            }
        })
    }

    /// PyTorch's `scheduler.step()`. ReduceLROnPlateau needs a metric: use [`LrScheduler::step_metric`].
    #[inline]
    pub fn step(&mut self, groups: &mut [Group]) -> Result<()> {
        match self {
            LrScheduler::Lambda(s) => s.step(groups),
            LrScheduler::Multiplicative(s) => s.step(groups),
            LrScheduler::Step(s) => s.step(groups),
            LrScheduler::MultiStep(s) => s.step(groups),
            LrScheduler::Constant(s) => s.step(groups),
            LrScheduler::Linear(s) => s.step(groups),
            LrScheduler::Exponential(s) => s.step(groups),
            LrScheduler::Polynomial(s) => s.step(groups),
            LrScheduler::CosineAnnealing(s) => s.step(groups),
            LrScheduler::WarmRestarts(s) => s.step(groups),
            LrScheduler::Cyclic(s) => s.step(groups),
            LrScheduler::OneCycle(s) => s.step(groups),
            LrScheduler::Sequential(s) => s.step(groups),
            LrScheduler::Chained(s) => s.step(groups),
            LrScheduler::Plateau(_) => {
                Err(Error::Schedule("reduce_lr_on_plateau steps on a metric: call step_metric(value)".into()))
            }
        }
    }

    /// ReduceLROnPlateau's `step(metrics)`; an error for every other kind.
    pub fn step_metric(&mut self, groups: &mut [Group], metric: f64) -> Result<()> {
        match self {
            LrScheduler::Plateau(p) => {
                p.step_metric(groups, metric);
                Ok(())
            }
            _ => Err(Error::Schedule("only reduce_lr_on_plateau steps on a metric".into())),
        }
    }

    /// CosineAnnealingWarmRestarts' `step(epoch)` (fractional epochs allowed); an error for other kinds.
    pub fn step_epoch(&mut self, groups: &mut [Group], epoch: f64) -> Result<()> {
        match self {
            LrScheduler::WarmRestarts(s) => s.step_epoch(groups, epoch),
            _ => Err(Error::Schedule("only cosine_annealing_warm_restarts takes step(epoch)".into())),
        }
    }

    /// PyTorch's `last_epoch` (for a ChainedScheduler: its last child's).
    pub fn last_epoch(&self) -> i64 {
        match self {
            LrScheduler::WarmRestarts(s) => s.t,
            LrScheduler::Plateau(s) => s.t,
            LrScheduler::Sequential(s) => s.t,
            LrScheduler::Chained(s) => s.children.last().map_or(0, LrScheduler::last_epoch),
            s => counter!(s, x => x.t, 0),
        }
    }

    /// SequentialLR's restart of child i at a milestone: t = 0 and the closed form at 0.
    pub(crate) fn restart(&mut self, groups: &mut [Group]) -> Result<()> {
        match self {
            LrScheduler::Lambda(s) => s.restart(groups),
            LrScheduler::Multiplicative(s) => s.restart(groups),
            LrScheduler::Step(s) => s.restart(groups),
            LrScheduler::MultiStep(s) => s.restart(groups),
            LrScheduler::Constant(s) => s.restart(groups),
            LrScheduler::Linear(s) => s.restart(groups),
            LrScheduler::Exponential(s) => s.restart(groups),
            LrScheduler::Polynomial(s) => s.restart(groups),
            LrScheduler::CosineAnnealing(s) => s.restart(groups),
            LrScheduler::WarmRestarts(s) => s.restart(groups),
            LrScheduler::Cyclic(s) => s.restart(groups),
            LrScheduler::OneCycle(s) => s.restart(groups),
            // PyTorch calls step(0) on them, which their step() does not take (TypeError).
            LrScheduler::Sequential(_) | LrScheduler::Chained(_) | LrScheduler::Plateau(_) => Err(Error::Schedule(
                "sequential.schedulers after the first cannot be sequential or chained (PyTorch cannot restart them at a milestone)".into(),
            )),
        }
    }

    /// SequentialLR's `recursive_undo`: `t −= 1` on every leaf (composites keep their own counters).
    pub(crate) fn rewind(&mut self) {
        match self {
            LrScheduler::Sequential(s) => s.children.iter_mut().for_each(LrScheduler::rewind),
            LrScheduler::Chained(s) => s.children.iter_mut().for_each(LrScheduler::rewind),
            LrScheduler::WarmRestarts(s) => s.t -= 1,
            LrScheduler::Plateau(s) => s.t -= 1,
            s => counter!(s, x => x.t -= 1, ()),
        }
    }

    /// `Err` naming the field if any of the next `steps` calls of `step()` would fail (PyTorch raises there),
    /// so a run is rejected before it starts. Analytic for the leaves; SequentialLR runs a copy.
    pub fn check_run(&self, groups: &[Group], steps: usize) -> Result<()> {
        match self {
            LrScheduler::Step(s) => s.check_run(steps),
            LrScheduler::MultiStep(s) => s.check_run(steps),
            LrScheduler::Constant(s) => s.check_run(steps),
            LrScheduler::Polynomial(s) => s.check_run(steps),
            LrScheduler::CosineAnnealing(s) => s.check_run(steps),
            LrScheduler::Cyclic(s) => s.check_run(steps),
            LrScheduler::OneCycle(s) => s.check_run(steps),
            LrScheduler::Sequential(s) => s.check_run(groups, steps),
            LrScheduler::Chained(s) => s.check_run(groups, steps),
            // No step()-time errors: closures and validated built-in factors, plain recursions, metrics.
            LrScheduler::Lambda(_)
            | LrScheduler::Multiplicative(_)
            | LrScheduler::Linear(_)
            | LrScheduler::Exponential(_)
            | LrScheduler::WarmRestarts(_)
            | LrScheduler::Plateau(_) => Ok(()),
        }
    }

    /// Whether this scheduler (or a child) writes the momentum.
    pub fn cycles_momentum(&self) -> bool {
        match self {
            LrScheduler::Cyclic(s) => s.cycles_momentum(),
            LrScheduler::OneCycle(s) => s.cycles_momentum(),
            LrScheduler::Sequential(s) => s.children.iter().any(LrScheduler::cycles_momentum),
            LrScheduler::Chained(s) => s.children.iter().any(LrScheduler::cycles_momentum),
            _ => false,
        }
    }

    /// The mutable state (counters, plateau's best/bad/cooldown, warm restarts' T_cur/T_i, children's).
    pub fn state(&self) -> SchedState {
        match self {
            LrScheduler::WarmRestarts(s) => SchedState::WarmRestarts { t: s.t, t_cur: s.t_cur, t_i: s.t_i },
            LrScheduler::Plateau(s) => {
                SchedState::Plateau { t: s.t, best: s.best, num_bad: s.num_bad, cooldown_counter: s.cooldown_counter }
            }
            LrScheduler::Sequential(s) => {
                SchedState::Sequential { t: s.t, children: s.children.iter().map(LrScheduler::state).collect() }
            }
            LrScheduler::Chained(s) => {
                SchedState::Chained { children: s.children.iter().map(LrScheduler::state).collect() }
            }
            s => SchedState::Counter { t: counter!(s, x => x.t, 0) },
        }
    }

    /// Load a [`LrScheduler::state`] into a scheduler built from the same config.
    pub fn load_state(&mut self, st: &SchedState) -> Result<()> {
        let mismatch = || Error::Schedule("saved scheduler state does not match this schedule's kind or shape".into());
        match (self, st) {
            (LrScheduler::WarmRestarts(s), SchedState::WarmRestarts { t, t_cur, t_i }) => {
                if *t_i < 1 {
                    return Err(mismatch());
                }
                (s.t, s.t_cur, s.t_i) = (*t, *t_cur, *t_i);
            }
            (LrScheduler::Plateau(s), SchedState::Plateau { t, best, num_bad, cooldown_counter }) => {
                (s.t, s.best, s.num_bad, s.cooldown_counter) = (*t, *best, *num_bad, *cooldown_counter);
            }
            (LrScheduler::Sequential(s), SchedState::Sequential { t, children }) => {
                load_children(&mut s.children, children)?;
                s.t = *t;
            }
            (LrScheduler::Chained(s), SchedState::Chained { children }) => load_children(&mut s.children, children)?,
            (s, SchedState::Counter { t }) => counter!(s, x => x.t = *t, return Err(mismatch())),
            _ => return Err(mismatch()),
        }
        Ok(())
    }
}

fn build_children(cfgs: &[ScheduleConfig], groups: &mut [Group], kind: &str) -> Result<Vec<LrScheduler>> {
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| LrScheduler::build(c, groups).map_err(|e| prefixed(e, &format!("{kind}.schedulers[{i}]"))))
        .collect()
}

fn load_children(children: &mut [LrScheduler], states: &[SchedState]) -> Result<()> {
    if children.len() != states.len() {
        return Err(Error::Schedule(format!(
            "saved scheduler state has {} children but the schedule has {}",
            states.len(),
            children.len()
        )));
    }
    for (c, s) in children.iter_mut().zip(states) {
        c.load_state(s)?;
    }
    Ok(())
}
