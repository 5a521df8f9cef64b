//! The per-step hyper-parameter blocks of the multi-tensor update ops ([`crate::backend::Backend::sgd_update`],
//! [`crate::backend::Backend::adam_update`]): `#[repr(C)]` so the host writes them with one
//! `write_uniform(bytemuck::bytes_of(&hyper))`, mirrored field for field by the WGSL structs of the same names in
//! `shaders/sgd.wgsl` and `shaders/adam.wgsl` (checked by `tests/naga_layout.rs`). Every struct is a multiple of
//! 16 bytes, as uniform buffers and arrays of structs in them require.
//!
//! Values that PyTorch computes in Python floats (f64) from the step count and the learning rate — Adam's
//! `step_size`, `bias_correction2_sqrt`, AdamW's `decay_factor` — are computed by the host in f64 and stored
//! rounded to f32, which is what PyTorch's kernels receive as well.

use bytemuck::{Pod, Zeroable};

/// Parameter groups an update can address (param groups beyond this are refused by the CLI).
pub const MAX_GROUPS: usize = 8;

/// Gradient clipping applied inside the update, before the optimizer's own arithmetic:
/// `use_norm` as `torch.nn.utils.clip_grad_norm_(max_norm)` with the global norm read from
/// `norms[norm_slot]` (written by [`crate::backend::Backend::grad_norm`]), then `use_value` as
/// `torch.nn.utils.clip_grad_value_(value)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ClipParams {
    pub max_norm: f32,
    pub value: f32,
    pub use_norm: u32,
    pub use_value: u32,
    pub norm_slot: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// One `torch.optim.SGD` parameter group. `init_momentum = 1` on the group's first step with momentum
/// (PyTorch creates the buffer as a copy of the gradient then).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SgdGroup {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: u32,
    pub init_momentum: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// One member's block of the uniform of [`crate::backend::Backend::sgd_update`] (a population's uniform holds
/// one per member, member-major). `frozen = 1` leaves the member's parameters and momentum untouched.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SgdHyper {
    pub clip: ClipParams,
    pub frozen: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
    pub group: [SgdGroup; MAX_GROUPS],
}

/// One `torch.optim.Adam`/`AdamW` parameter group at step t (1-based):
/// `step_size = lr / (1 − beta1^t)`, `bias_correction2_sqrt = sqrt(1 − beta2^t)`,
/// `decay_factor = 1 − lr·weight_decay` (AdamW), and the moments' weights `one_minus_beta1 = 1 − beta1`,
/// `one_minus_beta2 = 1 − beta2`, all computed on the host in f64 ([`AdamGroup::at_step`]).
///
/// The weights are not left to the kernels to form from `beta1`/`beta2` in f32: PyTorch passes `1 - beta2` as a
/// Python float, so its kernel multiplies by f32(1 − 0.999) = 0.001, while 1 − f32(0.999) = 0.00099998713 is
/// 1.3e-5 smaller. That bias scales every Adam step by ~6e-6 the same way, and a long run amplifies it far
/// past float32 noise (issue #22: 24 LeNet-5 steps landed 300× outside PyTorch's own float32 spread).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AdamGroup {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub step_size: f32,
    pub bias_correction2_sqrt: f32,
    pub decay_factor: f32,
    pub one_minus_beta1: f32,
    pub one_minus_beta2: f32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl AdamGroup {
    /// The group at step `step` (1-based) with these hyper-parameters, every derived value computed in f64 as
    /// `_single_tensor_adam` computes it in Python floats, then rounded once to f32 (what its kernels get).
    pub fn at_step(lr: f64, (beta1, beta2): (f64, f64), eps: f64, weight_decay: f64, step: f64) -> AdamGroup {
        let bias_correction1 = 1.0 - beta1.powf(step);
        let bias_correction2 = 1.0 - beta2.powf(step);
        AdamGroup {
            lr: lr as f32,
            beta1: beta1 as f32,
            beta2: beta2 as f32,
            eps: eps as f32,
            weight_decay: weight_decay as f32,
            step_size: (lr / bias_correction1) as f32,
            bias_correction2_sqrt: bias_correction2.powf(0.5) as f32,
            decay_factor: (1.0 - lr * weight_decay) as f32,
            one_minus_beta1: (1.0 - beta1) as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            _pad0: 0,
            _pad1: 0,
        }
    }
}

/// One member's block of the uniform of [`crate::backend::Backend::adam_update`]: `decoupled = 1` is AdamW,
/// `amsgrad = 1` keeps the running maximum of `exp_avg_sq`, `frozen = 1` leaves the member's parameters and
/// moments untouched.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AdamHyper {
    pub clip: ClipParams,
    pub amsgrad: u32,
    pub decoupled: u32,
    pub frozen: u32,
    pub _pad0: u32,
    pub group: [AdamGroup; MAX_GROUPS],
}
