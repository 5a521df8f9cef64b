//! The multi-tensor ops of the CPU backend: argument checks shared with the GPU ([`crate::optim::check`]), the
//! hyper-parameters read back from the uniform's bytes, then each tensor updated by the plain per-tensor
//! reference ([`super::sgd`], [`super::adam`]) with the clipping of [`super::clip`].

use super::adam::{self, Moments};
use super::clip::{Clip, global_norm};
use super::{CpuBackend, CpuTensor, sgd};
use crate::optim::check::{StateSet, check_sgd_buffers, check_update, read_hyper};
use crate::optim::{AdamHyper, ClipParams, SgdHyper};
use crate::{Error, Result};

pub(super) fn grad_norm(grads: &[CpuTensor], norms: &mut CpuTensor, slot: usize) -> Result<()> {
    let op = "grad_norm";
    if grads.is_empty() {
        return Err(Error::shape(op, "no gradients given"));
    }
    let slots = norms.data.len();
    let dst = norms
        .data
        .get_mut(slot)
        .ok_or_else(|| Error::shape(op, format!("norm slot {slot} is outside the {slots}-entry norm buffer")))?;
    *dst = global_norm(grads.iter().map(|g| g.data.as_slice()));
    Ok(())
}

/// The clipping of this update; the norm is read only when clipping by norm (the slot was checked).
fn clip(c: &ClipParams, norms: &CpuTensor) -> Clip {
    Clip::new(c, if c.use_norm != 0 { norms.data[c.norm_slot as usize] } else { 0.0 })
}

pub(super) fn sgd_update(
    b: &CpuBackend,
    params: &mut [CpuTensor],
    grads: &[CpuTensor],
    bufs: &mut [CpuTensor],
    groups: &[u32],
    hyper: &[u8],
    norms: &CpuTensor,
) -> Result<()> {
    let op = "sgd_update";
    let h: SgdHyper = read_hyper(op, hyper)?;
    let states = [StateSet { name: "momentum buffers", tensors: &*bufs, optional: true }];
    check_update(b, op, params, grads, &states, groups, &h.clip, norms)?;
    check_sgd_buffers(op, &h, groups, bufs.len())?;
    let clip = clip(&h.clip, norms);
    for (t, (p, g)) in params.iter_mut().zip(grads).enumerate() {
        let buf = bufs.get_mut(t).map(|b| b.data.as_mut_slice());
        sgd::update(&h.group[groups[t] as usize], &clip, &mut p.data, &g.data, buf);
    }
    Ok(())
}

/// Adam's three state sets, in the order of the trait's arguments.
pub(super) struct AdamSets<'a> {
    pub exp_avg: &'a mut [CpuTensor],
    pub exp_avg_sq: &'a mut [CpuTensor],
    pub max_exp_avg_sq: &'a mut [CpuTensor],
}

pub(super) fn adam_update(
    b: &CpuBackend,
    params: &mut [CpuTensor],
    grads: &[CpuTensor],
    s: AdamSets<'_>,
    groups: &[u32],
    hyper: &[u8],
    norms: &CpuTensor,
) -> Result<()> {
    let op = "adam_update";
    let h: AdamHyper = read_hyper(op, hyper)?;
    let amsgrad = h.amsgrad != 0;
    let states = [
        StateSet { name: "exp_avg", tensors: &*s.exp_avg, optional: false },
        StateSet { name: "exp_avg_sq", tensors: &*s.exp_avg_sq, optional: false },
        StateSet { name: "max_exp_avg_sq", tensors: &*s.max_exp_avg_sq, optional: !amsgrad },
    ];
    check_update(b, op, params, grads, &states, groups, &h.clip, norms)?;
    let clip = clip(&h.clip, norms);
    for (t, (p, g)) in params.iter_mut().zip(grads).enumerate() {
        let m = Moments {
            exp_avg: &mut s.exp_avg[t].data,
            exp_avg_sq: &mut s.exp_avg_sq[t].data,
            max_exp_avg_sq: if amsgrad { Some(&mut s.max_exp_avg_sq[t].data) } else { None },
        };
        adam::update(&h.group[groups[t] as usize], h.decoupled != 0, &clip, &mut p.data, &g.data, m);
    }
    Ok(())
}
