//! Gradient statistics and clipping, as `torch.nn.utils` computes them, applied element by element inside the
//! updates (the gradient tensors themselves are never modified).

use crate::optim::ClipParams;

/// `sqrt(Σ_t Σ_i g_t[i]²)` accumulated in f64 (the exact value rounded once to f32, where PyTorch's float32
/// `vector_norm` lands within a few ulp).
pub fn global_norm<'a>(grads: impl IntoIterator<Item = &'a [f32]>) -> f32 {
    let sum: f64 = grads.into_iter().flat_map(|g| g.iter()).map(|&v| f64::from(v) * f64::from(v)).sum();
    sum.sqrt() as f32
}

/// The clipping one update applies to every gradient element.
#[derive(Clone, Copy, Debug)]
pub struct Clip {
    /// `min(1, max_norm / (norm + 1e-6))` when clipping by norm.
    coef: Option<f32>,
    /// The bound of clipping by value.
    value: Option<f32>,
}

impl Clip {
    /// `norm` is the global gradient norm (`norms[clip.norm_slot]`), read only when clipping by norm.
    pub fn new(c: &ClipParams, norm: f32) -> Clip {
        // clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6), where `float / tensor` is
        // `tensor.reciprocal() * float` in PyTorch; then clamp(max = 1), which keeps a NaN (f32::min would not).
        let coef = (c.use_norm != 0).then(|| {
            let coef = (1.0 / (norm + 1e-6)) * c.max_norm;
            if coef > 1.0 { 1.0 } else { coef }
        });
        Clip { coef, value: (c.use_value != 0).then_some(c.value) }
    }

    /// The clipped gradient element: scaled by the norm coefficient, then clamped to ±value (NaN passes, as in
    /// `torch.clamp`).
    #[inline]
    pub fn apply(&self, g: f32) -> f32 {
        let g = match self.coef {
            Some(c) => g * c,
            None => g,
        };
        match self.value {
            Some(v) if g < -v => -v,
            Some(v) if g > v => v,
            _ => g,
        }
    }
}
