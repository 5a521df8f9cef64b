//! `torch.optim.SGD`'s update for one parameter tensor (the single-tensor and foreach paths compute the same):
//! g = clip(grad); g = g + wd·p (wd ≠ 0); buf = g on first use, else μ·buf + (1−dampening)·g;
//! g = g + μ·buf (nesterov) or buf (μ ≠ 0); p = p − lr·g. All arithmetic in f32, in this order, as PyTorch does
//! with its Python-float scalars cast to the parameter's type.

use super::clip::Clip;
use crate::optim::SgdGroup;

/// `buf` is `None` only for a group without momentum (checked by the caller).
pub fn update(h: &SgdGroup, clip: &Clip, param: &mut [f32], grad: &[f32], mut buf: Option<&mut [f32]>) {
    let (lr, mu, damp, wd) = (h.lr, h.momentum, h.dampening, h.weight_decay);
    for (i, (p, &g0)) in param.iter_mut().zip(grad).enumerate() {
        let mut g = clip.apply(g0);
        if wd != 0.0 {
            g += wd * *p;
        }
        if mu != 0.0
            && let Some(b) = buf.as_deref_mut().map(|b| &mut b[i])
        {
            *b = if h.init_momentum != 0 { g } else { mu * *b + (1.0 - damp) * g };
            g = if h.nesterov != 0 { g + mu * *b } else { *b };
        }
        *p -= lr * g;
    }
}
