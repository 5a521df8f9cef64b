//! `torch.optim.SGD`'s update for one parameter (the single-tensor and foreach paths compute the same):
//! g = grad + wd·p; buf = g on first use, else μ·buf + (1−dampening)·g; g = g + μ·buf (nesterov) or buf;
//! p = p − lr·g. All arithmetic in the parameter's precision, as PyTorch does with its Python-float scalars.

use super::real::Real;

pub struct SgdHyper<T> {
    pub lr: T,
    pub momentum: T,
    pub dampening: T,
    pub weight_decay: T,
    pub nesterov: bool,
    pub init_momentum: bool,
}

pub fn update<T: Real>(h: &SgdHyper<T>, param: &mut [T], grad: &[T], buf: &mut [T]) {
    for ((p, &g0), b) in param.iter_mut().zip(grad).zip(buf.iter_mut()) {
        let mut g = if h.weight_decay != T::ZERO { g0 + h.weight_decay * *p } else { g0 };
        if h.momentum != T::ZERO {
            *b = if h.init_momentum { g } else { h.momentum * *b + (T::ONE - h.dampening) * g };
            g = if h.nesterov { g + h.momentum * *b } else { *b };
        }
        *p = *p - h.lr * g;
    }
}
