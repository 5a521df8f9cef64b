//! Optimizer hyper-parameters. The update itself is a backend op ([`crate::backend::Backend::sgd_update`],
//! [`crate::backend::Backend::adam_update`]), written out exactly as `torch.optim.SGD`/`Adam`/`AdamW` define it;
//! the learning rate and momentum here are the values before any schedule, which the scheduler then drives step
//! by step. [`hyper`] holds the per-step blocks the update ops read.

pub(crate) mod check;
pub mod hyper;

pub use hyper::{AdamGroup, AdamHyper, ClipParams, MAX_GROUPS, SgdGroup, SgdHyper};

/// `torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

impl Sgd {
    /// PyTorch's constructor checks: lr ≥ 0, momentum ≥ 0, weight_decay ≥ 0, and nesterov needs
    /// momentum > 0 with zero dampening.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Usage(m));
        if !(self.lr >= 0.0 && self.lr.is_finite()) {
            return bad(format!("--lr must be a finite number ≥ 0 (got {})", self.lr));
        }
        if !(self.momentum >= 0.0 && self.momentum.is_finite()) {
            return bad(format!("--momentum must be a finite number ≥ 0 (got {})", self.momentum));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!("--weight-decay must be a finite number ≥ 0 (got {})", self.weight_decay));
        }
        if !self.dampening.is_finite() {
            return bad(format!("--dampening must be finite (got {})", self.dampening));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return bad("--nesterov requires --momentum > 0 and --dampening 0 (as torch.optim.SGD)".into());
        }
        Ok(())
    }
}
