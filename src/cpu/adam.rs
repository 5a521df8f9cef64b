//! `torch.optim.Adam` / `AdamW` for one parameter tensor, PyTorch's single-tensor formulation with the host's
//! f64 bias corrections (see [`crate::backend::Backend::adam_update`] for the formula). f32 arithmetic in exactly
//! the documented order, one rounding per operation: the GPU kernel is compared against this.

use super::clip::Clip;
use crate::optim::AdamGroup;

/// The moments of one parameter; `max_exp_avg_sq` is `Some` exactly when amsgrad is on.
pub struct Moments<'a> {
    pub exp_avg: &'a mut [f32],
    pub exp_avg_sq: &'a mut [f32],
    pub max_exp_avg_sq: Option<&'a mut [f32]>,
}

/// `torch.lerp(start, end, w)` for a scalar weight: the formula depends on which side of 0.5 the weight is, so
/// that the result is exact at w = 0 and w = 1.
#[inline]
pub fn lerp(start: f32, end: f32, w: f32) -> f32 {
    if w.abs() < 0.5 { start + w * (end - start) } else { end - (end - start) * (1.0 - w) }
}

pub fn update(h: &AdamGroup, decoupled: bool, clip: &Clip, param: &mut [f32], grad: &[f32], m: Moments<'_>) {
    let Moments { exp_avg, exp_avg_sq, mut max_exp_avg_sq } = m;
    // The host's f64 `1 − beta` (PyTorch's Python floats), not 1 − beta formed here in f32: see AdamGroup.
    let (w1, w2) = (h.one_minus_beta1, h.one_minus_beta2);
    for (i, (p, &g0)) in param.iter_mut().zip(grad).enumerate() {
        let mut g = clip.apply(g0);
        if h.weight_decay != 0.0 {
            if decoupled {
                *p *= h.decay_factor;
            } else {
                g += h.weight_decay * *p;
            }
        }
        let ea = lerp(exp_avg[i], g, w1);
        exp_avg[i] = ea;
        let mut v = h.beta2 * exp_avg_sq[i] + (w2 * g) * g;
        exp_avg_sq[i] = v;
        if let Some(mx) = max_exp_avg_sq.as_deref_mut() {
            // torch.maximum propagates a NaN from either side; f32::max would drop it.
            if v.is_nan() || v > mx[i] {
                mx[i] = v;
            }
            v = mx[i];
        }
        let denom = v.sqrt() / h.bias_correction2_sqrt + h.eps;
        *p -= (h.step_size * ea) / denom;
    }
}
