//! Multi-tensor optimizer updates through sgd.wgsl and adam.wgsl: one dispatch per call for every tensor of
//! the packed set, hyper-parameters from the optimizer's uniform, the segment table cached by content.

use crate::Result;
use crate::gpu::bindings::{Adam, Sgd};
use crate::gpu::buffer::{GpuUniform, Res};
use crate::gpu::kernels::{Family, KernelKey, Mode};
use crate::gpu::packed::{same_layout, whole_pack};
use crate::gpu::{GpuBackend, GpuTensor, WG};
use crate::optim::check::{StateSet, check_sgd_buffers, check_update, read_hyper};
use crate::optim::{AdamHyper, SgdHyper};

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
    let h: SgdHyper = read_hyper(op, &hyper.host)?;
    let states = [StateSet { name: "momentum buffers", tensors: &*bufs, optional: true }];
    check_update(&*g, op, params, grads, &states, groups, &h.clip, norms)?;
    check_sgd_buffers(op, &h, groups, bufs.len())?;
    if params.is_empty() {
        return Ok(());
    }
    let pres = whole_pack(op, "params", params)?.1;
    let placeholder = g.placeholder()?;
    let gres = state(op, "grads", params, grads, &placeholder)?;
    let bres = state(op, "momentum buffers", params, bufs, &placeholder)?;
    let ((sid, sbuf), wgs) = g.segment_table(op, params, groups)?;
    let (uid, ubuf) = g.bind_uniform(hyper);
    let grid = g.groups_1d(wgs * WG);
    let binds = Sgd {
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
    let h: AdamHyper = read_hyper(op, &hyper.host)?;
    let amsgrad = h.amsgrad != 0;
    let states = [
        StateSet { name: "exp_avg", tensors: &*s.exp_avg, optional: false },
        StateSet { name: "exp_avg_sq", tensors: &*s.exp_avg_sq, optional: false },
        StateSet { name: "max_exp_avg_sq", tensors: &*s.max_exp_avg_sq, optional: !amsgrad },
    ];
    check_update(&*g, op, params, grads, &states, groups, &h.clip, norms)?;
    if params.is_empty() {
        return Ok(());
    }
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
    let grid = g.groups_1d(wgs * WG);
    let binds = Adam {
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
