//! Multi-tensor optimizer updates through sgd.wgsl and adam.wgsl: one dispatch per call for every tensor of
//! the packed set and every member (workgroup z), hyper-parameters from the optimizer's uniform (one block per
//! member), the segment table (member 0's offsets, shared by all members) cached by content.
//!
//! Each member's block is checked as a solo call's would be (norm slot, momentum buffers, amsgrad state), so a
//! population refuses exactly what one of its members run alone would refuse.

use bytemuck::Pod;

use super::{Role, mstride, u};
use crate::gpu::bindings::{Adam, Sgd};
use crate::gpu::buffer::{GpuUniform, Res};
use crate::gpu::kernels::{Family, KernelKey, Mode};
use crate::gpu::packed::{same_layout, whole_pack};
use crate::gpu::params::MemberParams;
use crate::gpu::{GpuBackend, GpuTensor, WG};
use crate::optim::check::{StateSet, check_sgd_buffers, check_update, read_hyper};
use crate::optim::{AdamHyper, SgdHyper};
use crate::{Error, Result};

/// The P hyper-parameter blocks of `hyper` (P = the parameters' member count), each read as a `T`.
fn blocks<T: Pod>(op: &'static str, hyper: &GpuUniform, members: usize) -> Result<Vec<T>> {
    let size = std::mem::size_of::<T>();
    if hyper.host.len() != members * size {
        return Err(Error::shape(
            op,
            format!(
                "`{}` holds {} bytes; {members} member(s) need {members} blocks of {size}",
                hyper.label,
                hyper.host.len()
            ),
        ));
    }
    hyper.host.chunks_exact(size).map(|b| read_hyper(op, b)).collect()
}

/// The member strides of an update: every parameter and state set has P members (their set size apart); the
/// gradients P or one shared set; the norms P when some member clips by norm (its slot is per member), else
/// unread and allowed to be one shared tensor.
fn member_params(
    op: &'static str,
    params: &[GpuTensor],
    grads: &[GpuTensor],
    states: &[(&str, &[GpuTensor])],
    norms: &GpuTensor,
    clips_by_norm: bool,
) -> Result<MemberParams> {
    let p = params[0].members;
    for (what, set) in states.iter().chain([&("params", params)]) {
        if let Some(t) = set.iter().find(|t| t.members != p) {
            return Err(Error::shape(op, format!("`{}` ({what}) has {} members, expected {p}", t.label, t.members)));
        }
        if let Some(t) = set.iter().find(|t| t.mstride != params[0].mstride) {
            return Err(Error::shape(op, format!("`{}` ({what}) is packed with another layout", t.label)));
        }
    }
    let grad_ms = mstride(op, "grads", &grads[0], p, Role::Input)?;
    if grads.iter().any(|t| t.members != grads[0].members) {
        return Err(Error::shape(op, "the gradients have different member counts"));
    }
    if grad_ms != 0 && grad_ms as usize != params[0].mstride {
        return Err(Error::shape(op, "grads are packed with another layout than the parameters"));
    }
    Ok(MemberParams {
        set_ms: if p == 1 { 0 } else { u(op, params[0].mstride)? },
        grad_ms,
        norms_ms: mstride(op, "norms", norms, p, if clips_by_norm { Role::Own } else { Role::Input })?,
        _pad0: 0,
    })
}

/// A state set to bind: the whole pack, or the placeholder when the set is empty (and unused by the kernel).
fn state<'a>(
    op: &'static str,
    what: &str,
    params: &[GpuTensor],
    set: &'a [GpuTensor],
    placeholder: &'a (u64, wgpu::Buffer),
) -> Result<Res<'a>> {
    if set.is_empty() {
        return Ok(Res { id: placeholder.0, buffer: &placeholder.1 });
    }
    same_layout(op, what, params, set)?;
    Ok(whole_pack(op, what, set)?.1)
}

fn label(params: &[GpuTensor]) -> String {
    match params {
        [one] => one.label.clone(),
        [first, .., last] => format!("{}…{}", first.label, last.label),
        [] => String::new(),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn sgd_update(
    g: &mut GpuBackend,
    params: &mut [GpuTensor],
    grads: &[GpuTensor],
    bufs: &mut [GpuTensor],
    groups: &[u32],
    hyper: &GpuUniform,
    norms: &GpuTensor,
) -> Result<()> {
    let op = "sgd_update";
    let members = params.first().map_or(1, |t| t.members);
    let blocks: Vec<SgdHyper> = blocks(op, hyper, members)?;
    let states = [StateSet { name: "momentum buffers", tensors: &*bufs, optional: true }];
    for h in &blocks {
        check_update(&*g, op, params, grads, &states, groups, &h.clip, norms)?;
        check_sgd_buffers(op, h, groups, bufs.len())?;
    }
    if params.is_empty() {
        return Ok(());
    }
    let clips = blocks.iter().any(|h| h.clip.use_norm != 0);
    let mp = member_params(op, params, grads, &[("momentum buffers", &*bufs)], norms, clips)?;
    let pres = whole_pack(op, "params", params)?.1;
    let placeholder = g.placeholder()?;
    let gres = state(op, "grads", params, grads, &placeholder)?;
    let bres = state(op, "momentum buffers", params, bufs, &placeholder)?;
    let ((sid, sbuf), wgs) = g.segment_table(op, params, groups)?;
    let (uid, ubuf) = g.bind_uniform(hyper);
    let (mid, mbuf) = g.uniform(&mp);
    let mut grid = g.groups_1d(wgs * WG);
    grid[2] = u(op, members)?;
    let binds = Sgd {
        members: Res { id: mid, buffer: &mbuf },
        hyper: Res { id: uid, buffer: &ubuf },
        segments: Res { id: sid, buffer: &sbuf },
        norms: norms.res(),
        param: pres,
        grad: gres,
        momentum: bres,
    };
    g.dispatch(KernelKey::new(Family::Sgd, Mode::Single), binds, grid, &label(params))
}

/// Adam's state sets, in the order of the trait's arguments.
pub struct AdamSets<'a> {
    pub exp_avg: &'a mut [GpuTensor],
    pub exp_avg_sq: &'a mut [GpuTensor],
    pub max_exp_avg_sq: &'a mut [GpuTensor],
}

pub fn adam_update(
    g: &mut GpuBackend,
    params: &mut [GpuTensor],
    grads: &[GpuTensor],
    s: AdamSets<'_>,
    groups: &[u32],
    hyper: &GpuUniform,
    norms: &GpuTensor,
) -> Result<()> {
    let op = "adam_update";
    let members = params.first().map_or(1, |t| t.members);
    let blocks: Vec<AdamHyper> = blocks(op, hyper, members)?;
    // The running maximum is needed as soon as one member keeps it.
    let amsgrad = blocks.iter().any(|h| h.amsgrad != 0);
    let states = [
        StateSet { name: "exp_avg", tensors: &*s.exp_avg, optional: false },
        StateSet { name: "exp_avg_sq", tensors: &*s.exp_avg_sq, optional: false },
        StateSet { name: "max_exp_avg_sq", tensors: &*s.max_exp_avg_sq, optional: !amsgrad },
    ];
    for h in &blocks {
        check_update(&*g, op, params, grads, &states, groups, &h.clip, norms)?;
    }
    if params.is_empty() {
        return Ok(());
    }
    let vmax_set: &[GpuTensor] = if amsgrad { s.max_exp_avg_sq } else { &[] };
    let sets = [("exp_avg", &*s.exp_avg), ("exp_avg_sq", &*s.exp_avg_sq), ("max_exp_avg_sq", vmax_set)];
    let clips = blocks.iter().any(|h| h.clip.use_norm != 0);
    let mp = member_params(op, params, grads, &sets, norms, clips)?;
    let pres = whole_pack(op, "params", params)?.1;
    let placeholder = g.placeholder()?;
    let gres = state(op, "grads", params, grads, &placeholder)?;
    let m = state(op, "exp_avg", params, s.exp_avg, &placeholder)?;
    let v = state(op, "exp_avg_sq", params, s.exp_avg_sq, &placeholder)?;
    // Without amsgrad a given max_exp_avg_sq set is left alone, as PyTorch never creates it then.
    let vmax = if amsgrad {
        state(op, "max_exp_avg_sq", params, s.max_exp_avg_sq, &placeholder)?
    } else {
        Res { id: placeholder.0, buffer: &placeholder.1 }
    };
    let ((sid, sbuf), wgs) = g.segment_table(op, params, groups)?;
    let (uid, ubuf) = g.bind_uniform(hyper);
    let (mid, mbuf) = g.uniform(&mp);
    let mut grid = g.groups_1d(wgs * WG);
    grid[2] = u(op, members)?;
    let binds = Adam {
        members: Res { id: mid, buffer: &mbuf },
        hyper: Res { id: uid, buffer: &ubuf },
        segments: Res { id: sid, buffer: &sbuf },
        norms: norms.res(),
        param: pres,
        grad: gres,
        exp_avg: m,
        exp_avg_sq: v,
        max_exp_avg_sq: vmax,
    };
    g.dispatch(KernelKey::new(Family::Adam, Mode::Single), binds, grid, &label(params))
}
