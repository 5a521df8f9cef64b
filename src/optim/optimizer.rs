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
    pub config: OptimConfig,
    pub groups: Groups,
    state: State<B>,
    uniform: B::Uniform,
    /// Optimizer steps taken (Adam's `step`, the same for every parameter).
    pub steps: u64,
    /// Per group: whether SGD's momentum buffers hold a value (PyTorch creates them on the first step with
    /// momentum ≠ 0 as a copy of the gradient).
    pub momentum_started: Vec<bool>,
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
        let set = |b: &mut B, suffix: &str| -> Result<Vec<B::Tensor>> {
            let labels: Vec<String> = names.iter().map(|n| format!("{n}.{suffix}")).collect();
            b.zeros_packed(shapes, &labels)
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
        let uniform = b.uniform(bytes, &format!("{}.hyper", config.kind.name()))?;
        let momentum_started = vec![false; groups.hyper.len()];
        Ok(Optimizer { config: config.clone(), groups, state, uniform, steps: 0, momentum_started })
    }

    fn clip(&self, norm_slot: usize) -> ClipParams {
        let c = &self.config;
        ClipParams {
            max_norm: c.clip_norm.unwrap_or(0.0) as f32,
            value: c.clip_value.unwrap_or(0.0) as f32,
            use_norm: u32::from(c.clip_norm.is_some()),
            use_value: u32::from(c.clip_value.is_some()),
            norm_slot: norm_slot as u32,
            ..Default::default()
        }
    }

    /// Write this step's hyper-parameters: lr and momentum (Adam: beta1) per group from the scheduler's `groups`,
    /// the rest from the configuration; Adam's bias corrections computed here in f64 exactly as PyTorch's
    /// `_single_tensor_adam` does in Python floats. `norm_slot` is where this step's gradient norm lands.
    pub fn prepare(&mut self, b: &mut B, sched: &[Group], norm_slot: usize) -> Result<()> {
        let clip = self.clip(norm_slot);
        self.steps += 1;
        match self.config.kind {
            OptimizerKind::Sgd => {
                let mut h = SgdHyper { clip, ..Default::default() };
                for (g, (hy, s)) in self.groups.hyper.iter().zip(sched).enumerate() {
                    let momentum = s.momentum_value();
                    h.group[g] = SgdGroup {
                        lr: s.lr as f32,
                        momentum: momentum as f32,
                        dampening: hy.dampening as f32,
                        weight_decay: hy.weight_decay as f32,
                        nesterov: u32::from(hy.nesterov),
                        init_momentum: u32::from(!self.momentum_started[g]),
                        ..Default::default()
                    };
                    self.momentum_started[g] |= momentum != 0.0;
                }
                b.write_uniform(&mut self.uniform, bytemuck::bytes_of(&h))
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let decoupled = self.config.kind == OptimizerKind::AdamW;
                let mut h = AdamHyper {
                    clip,
                    amsgrad: u32::from(self.config.amsgrad),
                    decoupled: u32::from(decoupled),
                    ..Default::default()
                };
                let step = self.steps as f64;
                for (g, (hy, s)) in self.groups.hyper.iter().zip(sched).enumerate() {
                    let (beta1, beta2) = s.betas.unwrap_or(hy.betas);
                    let bias_correction1 = 1.0 - beta1.powf(step);
                    let bias_correction2 = 1.0 - beta2.powf(step);
                    h.group[g] = AdamGroup {
                        lr: s.lr as f32,
                        beta1: beta1 as f32,
                        beta2: beta2 as f32,
                        eps: hy.eps as f32,
                        weight_decay: hy.weight_decay as f32,
                        step_size: (s.lr / bias_correction1) as f32,
                        bias_correction2_sqrt: bias_correction2.powf(0.5) as f32,
                        decay_factor: (1.0 - s.lr * hy.weight_decay) as f32,
                    };
                }
                b.write_uniform(&mut self.uniform, bytemuck::bytes_of(&h))
            }
        }
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
