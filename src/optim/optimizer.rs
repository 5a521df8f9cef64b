//! The optimizer of a run: it owns its state tensors (SGD's momentum buffers; Adam's exp_avg, exp_avg_sq and
//! max_exp_avg_sq, packed like the parameters) and its per-step uniform. Each step the loop hands it the
//! scheduler's groups; [`Optimizer::prepare`] turns them into the uniform (before the step is recorded, so the
//! write lands with the step's one submit), and [`Optimizer::update`] records one update over every parameter.

use crate::backend::Backend;
use crate::schedule::Group;
use crate::{Error, Result};

use super::config::{Groups, OptimConfig, OptimizerKind};
use super::hyper::{AdamGroup, AdamHyper, ClipParams, SgdGroup, SgdHyper};

/// The state read back: each set's PyTorch state name and its values, per parameter.
pub type StateValues = Vec<(&'static str, Vec<Vec<f32>>)>;

/// State tensors, each a packed set shaped like the parameters.
enum State<B: Backend> {
    Sgd { momentum_buffer: Vec<B::Tensor> },
    Adam { exp_avg: Vec<B::Tensor>, exp_avg_sq: Vec<B::Tensor>, max_exp_avg_sq: Vec<B::Tensor> },
}

pub struct Optimizer<B: Backend> {
    /// The run's settings (member 0's in a population).
    pub config: OptimConfig,
    pub groups: Groups,
    state: State<B>,
    /// One hyper-parameter block per member, written before each step.
    uniform: B::Uniform,
    /// Optimizer steps taken (Adam's `step`, the same for every parameter).
    pub steps: u64,
    /// Per group: whether SGD's momentum buffers hold a value (PyTorch creates them on the first step with
    /// momentum ≠ 0 as a copy of the gradient).
    pub momentum_started: Vec<bool>,
    /// Members 1.. of a population: each its own settings and counters, member 0's being the fields above.
    others: Vec<Counters>,
}

/// One member's settings and the counters its hyper-parameter block is computed from.
struct Counters {
    config: OptimConfig,
    groups: Groups,
    steps: u64,
    momentum_started: Vec<bool>,
}

impl<B: Backend> Optimizer<B> {
    /// Zeroed state for parameters named `names` with shapes `shapes` (parameter order).
    pub fn new(
        b: &mut B,
        config: &OptimConfig,
        groups: Groups,
        names: &[String],
        shapes: &[Vec<usize>],
    ) -> Result<Self> {
        Self::with_members(b, &[(config.clone(), groups)], names, shapes)
    }

    /// One optimizer over a model with a member axis, member m trained with `members[m]` (its configuration and
    /// groups): state sets with one copy per member, one uniform with one block per member. The members must
    /// agree on what shapes the state (kind, amsgrad) and on which group each parameter is in.
    pub fn with_members(
        b: &mut B,
        members: &[(OptimConfig, Groups)],
        names: &[String],
        shapes: &[Vec<usize>],
    ) -> Result<Self> {
        let Some((config, groups)) = members.first() else {
            return Err(Error::Usage("an optimizer needs at least one member".into()));
        };
        if let Some((c, g)) = members.iter().find(|(c, g)| {
            c.kind != config.kind
                || c.amsgrad != config.amsgrad
                || g.of != groups.of
                || g.hyper.len() != groups.hyper.len()
        }) {
            return Err(Error::Usage(format!(
                "population members differ in optimizer ({} vs {}), amsgrad or parameter groups ({:?} vs {:?}): \
                 they must be trained in separate populations",
                config.kind.name(),
                c.kind.name(),
                groups.of,
                g.of
            )));
        }
        let p = members.len();
        let set = |b: &mut B, suffix: &str| -> Result<Vec<B::Tensor>> {
            let labels: Vec<String> = names.iter().map(|n| format!("{n}.{suffix}")).collect();
            b.zeros_packed_members(p, shapes, &labels)
        };
        let (state, bytes) = match config.kind {
            OptimizerKind::Sgd => {
                (State::Sgd { momentum_buffer: set(b, "momentum_buffer")? }, std::mem::size_of::<SgdHyper>())
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => (
                State::Adam {
                    exp_avg: set(b, "exp_avg")?,
                    exp_avg_sq: set(b, "exp_avg_sq")?,
                    // Only amsgrad reads it; otherwise an empty set costs no memory.
                    max_exp_avg_sq: if config.amsgrad { set(b, "max_exp_avg_sq")? } else { Vec::new() },
                },
                std::mem::size_of::<AdamHyper>(),
            ),
        };
        let uniform = b.uniform(p * bytes, &format!("{}.hyper", config.kind.name()))?;
        let counters = |(config, groups): &(OptimConfig, Groups)| Counters {
            config: config.clone(),
            groups: groups.clone(),
            steps: 0,
            momentum_started: vec![false; groups.hyper.len()],
        };
        let first = counters(&members[0]);
        Ok(Optimizer {
            config: first.config,
            groups: first.groups,
            state,
            uniform,
            steps: 0,
            momentum_started: first.momentum_started,
            others: members[1..].iter().map(counters).collect(),
        })
    }

    /// Write this step's hyper-parameters: lr and momentum (Adam: beta1) per group from the scheduler's `groups`,
    /// the rest from the configuration; Adam's bias corrections computed here in f64 exactly as PyTorch's
    /// `_single_tensor_adam` does in Python floats. `norm_slot` is where this step's gradient norm lands.
    pub fn prepare(&mut self, b: &mut B, sched: &[Group], norm_slot: usize) -> Result<()> {
        self.prepare_members(b, &[Some(sched)], norm_slot)
    }

    /// [`Optimizer::prepare`] for every member at once, `scheds[m]` being member m's scheduler groups, or None
    /// for a frozen member (its block says `frozen`: its parameters and state stay as they are, and its step
    /// counters do not advance).
    pub fn prepare_members(&mut self, b: &mut B, scheds: &[Option<&[Group]>], norm_slot: usize) -> Result<()> {
        if scheds.len() != 1 + self.others.len() {
            return Err(Error::Usage(format!("{} schedules for {} members", scheds.len(), 1 + self.others.len())));
        }
        let mut bytes = Vec::with_capacity(scheds.len() * std::mem::size_of::<AdamHyper>());
        let Optimizer { config, groups, steps, momentum_started, others, uniform, .. } = self;
        let first = (&*config, &*groups, steps, momentum_started);
        let rest = others.iter_mut().map(|c| (&c.config, &c.groups, &mut c.steps, &mut c.momentum_started));
        for ((config, groups, steps, started), sched) in std::iter::once(first).chain(rest).zip(scheds) {
            match sched {
                Some(sched) => block(config, groups, steps, started, sched, norm_slot, &mut bytes),
                None => frozen_block(config, &mut bytes),
            }
        }
        b.write_uniform(uniform, &bytes)
    }

    /// Record the update of every parameter (after backward and the gradient norm).
    pub fn update(
        &mut self,
        b: &mut B,
        params: &mut [B::Tensor],
        grads: &[B::Tensor],
        norms: &B::Tensor,
    ) -> Result<()> {
        let of = &self.groups.of;
        match &mut self.state {
            State::Sgd { momentum_buffer } => b.sgd_update(params, grads, momentum_buffer, of, &self.uniform, norms),
            State::Adam { exp_avg, exp_avg_sq, max_exp_avg_sq } => {
                b.adam_update(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, of, &self.uniform, norms)
            }
        }
    }

    /// The state tensors under PyTorch's state names (`momentum_buffer`, `exp_avg`, `exp_avg_sq`,
    /// `max_exp_avg_sq`), each a packed set in parameter order.
    pub fn state_sets(&self) -> Vec<(&'static str, &[B::Tensor])> {
        match &self.state {
            State::Sgd { momentum_buffer } => vec![("momentum_buffer", momentum_buffer)],
            State::Adam { exp_avg, exp_avg_sq, max_exp_avg_sq } => {
                let mut v = vec![("exp_avg", exp_avg.as_slice()), ("exp_avg_sq", exp_avg_sq.as_slice())];
                if !max_exp_avg_sq.is_empty() {
                    v.push(("max_exp_avg_sq", max_exp_avg_sq.as_slice()));
                }
                v
            }
        }
    }

    /// Read every state set back in bulk (one readback per set), under its PyTorch state name.
    pub fn read_state(&self, b: &mut B) -> Result<StateValues> {
        self.state_sets().into_iter().map(|(name, set)| Ok((name, b.read_set(set)?))).collect()
    }

    /// Overwrite the state sets with saved values (`values[k]` for the k-th set of [`Optimizer::state_sets`], each
    /// in parameter order) and the step counters, before the first step of a resumed run. The caller has checked
    /// names and shapes; a count mismatch is an error, not a partial load.
    pub fn load_state(
        &mut self,
        b: &mut B,
        values: &[Vec<Vec<f32>>],
        steps: u64,
        momentum_started: &[bool],
    ) -> Result<()> {
        if momentum_started.len() != self.momentum_started.len() {
            return Err(Error::Usage(format!(
                "optimizer state: {} momentum flags for {} parameter groups",
                momentum_started.len(),
                self.momentum_started.len()
            )));
        }
        let sets: Vec<&mut Vec<B::Tensor>> = match &mut self.state {
            State::Sgd { momentum_buffer } => vec![momentum_buffer],
            State::Adam { exp_avg, exp_avg_sq, max_exp_avg_sq } => {
                let mut v = vec![exp_avg, exp_avg_sq];
                if !max_exp_avg_sq.is_empty() {
                    v.push(max_exp_avg_sq);
                }
                v
            }
        };
        if sets.len() != values.len() || sets.iter().zip(values).any(|(s, v)| s.len() != v.len()) {
            return Err(Error::Usage("optimizer state: the saved sets do not match the optimizer's".into()));
        }
        for (set, vals) in sets.into_iter().zip(values) {
            for (t, v) in set.iter_mut().zip(vals) {
                b.write(t, v)?;
            }
        }
        self.steps = steps;
        self.momentum_started = momentum_started.to_vec();
        Ok(())
    }
}

fn clip(c: &OptimConfig, norm_slot: usize) -> ClipParams {
    ClipParams {
        max_norm: c.clip_norm.unwrap_or(0.0) as f32,
        value: c.clip_value.unwrap_or(0.0) as f32,
        use_norm: u32::from(c.clip_norm.is_some()),
        use_value: u32::from(c.clip_value.is_some()),
        norm_slot: norm_slot as u32,
        ..Default::default()
    }
}

/// Append a frozen member's block: nothing of it is read but the flag (and amsgrad, which must agree).
fn frozen_block(config: &OptimConfig, out: &mut Vec<u8>) {
    match config.kind {
        OptimizerKind::Sgd => out.extend_from_slice(bytemuck::bytes_of(&SgdHyper { frozen: 1, ..Default::default() })),
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            let h = AdamHyper { frozen: 1, amsgrad: u32::from(config.amsgrad), ..Default::default() };
            out.extend_from_slice(bytemuck::bytes_of(&h))
        }
    }
}

/// Append one member's block for this step (see [`Optimizer::prepare`]) and advance its counters.
fn block(
    config: &OptimConfig,
    groups: &Groups,
    steps: &mut u64,
    momentum_started: &mut [bool],
    sched: &[Group],
    norm_slot: usize,
    out: &mut Vec<u8>,
) {
    let clip = clip(config, norm_slot);
    *steps += 1;
    match config.kind {
        OptimizerKind::Sgd => {
            let mut h = SgdHyper { clip, ..Default::default() };
            for (g, (hy, s)) in groups.hyper.iter().zip(sched).enumerate() {
                let momentum = s.momentum_value();
                h.group[g] = SgdGroup {
                    lr: s.lr as f32,
                    momentum: momentum as f32,
                    dampening: hy.dampening as f32,
                    weight_decay: hy.weight_decay as f32,
                    nesterov: u32::from(hy.nesterov),
                    init_momentum: u32::from(!momentum_started[g]),
                    ..Default::default()
                };
                momentum_started[g] |= momentum != 0.0;
            }
            out.extend_from_slice(bytemuck::bytes_of(&h));
        }
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            let decoupled = config.kind == OptimizerKind::AdamW;
            let mut h = AdamHyper {
                clip,
                amsgrad: u32::from(config.amsgrad),
                decoupled: u32::from(decoupled),
                ..Default::default()
            };
            let step = *steps as f64;
            for (g, (hy, s)) in groups.hyper.iter().zip(sched).enumerate() {
                let betas = s.betas.unwrap_or(hy.betas);
                h.group[g] = AdamGroup::at_step(s.lr, betas, hy.eps, hy.weight_decay, step);
            }
            out.extend_from_slice(bytemuck::bytes_of(&h));
        }
    }
}
