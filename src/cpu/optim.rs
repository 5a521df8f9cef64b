//! The multi-tensor ops of the CPU backend: argument checks shared with the GPU ([`crate::optim::check`]), the
//! hyper-parameters read back from the uniform's bytes, then each tensor updated by the plain per-tensor
//! reference ([`super::sgd`], [`super::adam`]) with the clipping of [`super::clip`].

use super::adam::{self, Moments};
use super::clip::{Clip, global_norm};
use super::members::{part, part_mut};
use super::{CpuBackend, CpuTensor, sgd};
use crate::backend::numel;
use crate::optim::check::{StateSet, check_sgd_buffers, check_update, read_hypers};
use crate::optim::{AdamHyper, ClipParams, SgdHyper};
use crate::{Error, Result};

pub(super) fn grad_norm(grads: &[CpuTensor], norms: &mut CpuTensor, slot: usize) -> Result<()> {
    let op = "grad_norm";
    if grads.is_empty() {
        return Err(Error::shape(op, "no gradients given"));
    }
    let p = norms.members;
    if let Some(g) = grads.iter().find(|g| g.members != p) {
        return Err(Error::shape(op, format!("a gradient has {} members, the norms {p}", g.members)));
    }
    let slots = numel(&norms.shape);
    if slot >= slots {
        return Err(Error::shape(op, format!("norm slot {slot} is outside the {slots}-entry norm buffer")));
    }
    for m in 0..p {
        part_mut(norms, m)[slot] = global_norm(grads.iter().map(|g| part(g, m)));
    }
    Ok(())
}

/// Member m's clipping in this update; the norm is read only when clipping by norm (the slot was checked).
fn clip(c: &ClipParams, norms: &CpuTensor, m: usize) -> Clip {
    Clip::new(c, if c.use_norm != 0 { part(norms, m)[c.norm_slot as usize] } else { 0.0 })
}

/// The update's member count (that of its parameters) and each member's hyper-parameter block.
fn hypers<T: bytemuck::Pod>(op: &'static str, params: &[CpuTensor], hyper: &[u8]) -> Result<(usize, Vec<T>)> {
    let p = params.first().map_or(1, |t| t.members);
    Ok((p, read_hypers(op, hyper, p)?))
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
    let (members, hs) = hypers::<SgdHyper>(op, params, hyper)?;
    let states = [StateSet { name: "momentum buffers", tensors: &*bufs, optional: true }];
    for h in &hs {
        check_update(b, op, params, grads, &states, groups, &h.clip, norms)?;
        check_sgd_buffers(op, h, groups, bufs.len())?;
    }
    for (m, h) in hs.iter().enumerate().take(members).filter(|(_, h)| h.frozen == 0) {
        let clip = clip(&h.clip, norms, m);
        for (t, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let buf = bufs.get_mut(t).map(|b| part_mut(b, m));
            sgd::update(&h.group[groups[t] as usize], &clip, part_mut(p, m), part(g, m), buf);
        }
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
    let (members, hs) = hypers::<AdamHyper>(op, params, hyper)?;
    // Whether the max_exp_avg_sq set exists is one fact for the whole population: every member must agree.
    let amsgrad = hs[0].amsgrad != 0;
    if hs.iter().any(|h| (h.amsgrad != 0) != amsgrad) {
        return Err(Error::shape(op, "members disagree on amsgrad (one max_exp_avg_sq set serves them all)"));
    }
    let states = [
        StateSet { name: "exp_avg", tensors: &*s.exp_avg, optional: false },
        StateSet { name: "exp_avg_sq", tensors: &*s.exp_avg_sq, optional: false },
        StateSet { name: "max_exp_avg_sq", tensors: &*s.max_exp_avg_sq, optional: !amsgrad },
    ];
    for h in &hs {
        check_update(b, op, params, grads, &states, groups, &h.clip, norms)?;
    }
    for (m, h) in hs.iter().enumerate().take(members).filter(|(_, h)| h.frozen == 0) {
        let clip = clip(&h.clip, norms, m);
        for (t, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let moments = Moments {
                exp_avg: part_mut(&mut s.exp_avg[t], m),
                exp_avg_sq: part_mut(&mut s.exp_avg_sq[t], m),
                max_exp_avg_sq: if amsgrad { Some(part_mut(&mut s.max_exp_avg_sq[t], m)) } else { None },
            };
            adam::update(&h.group[groups[t] as usize], h.decoupled != 0, &clip, part_mut(p, m), part(g, m), moments);
        }
    }
    Ok(())
}
