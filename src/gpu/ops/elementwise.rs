//! ReLU and bias gradients through elementwise.wgsl.
//!
//! With a member axis the ReLU kernels run unchanged over the P·numel stacked elements (stacked activations are
//! contiguous, so every member's copy is where the flat index puts it); the bias gradient takes the member from
//! workgroup z, because its reduction is per member.

use super::{Role, mstride, stacked, u};
use crate::gpu::bindings::{BiasGrad, ReluBackward, ReluForward};
use crate::gpu::buffer::Res;
use crate::gpu::kernels::{Family, KernelKey, Mode};
use crate::gpu::params::{BiasGradParams, ElemParams};
use crate::gpu::{GpuBackend, GpuTensor};
use crate::{Error, Result};

fn same(op: &'static str, a: &GpuTensor, b: &GpuTensor) -> Result<()> {
    if a.shape != b.shape {
        return Err(Error::shape(
            op,
            format!("`{}` has shape {:?} but `{}` has {:?}", a.label, a.shape, b.label, b.shape),
        ));
    }
    Ok(())
}

pub fn relu(g: &mut GpuBackend, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
    same("relu", x, y)?;
    stacked("relu", "y", y, y.members)?;
    stacked("relu", "x", x, y.members)?;
    let (pid, pbuf) = g.uniform(&ElemParams { len: u("relu", y.total())?, ..Default::default() });
    let groups = g.groups_1d(y.total());
    let binds = ReluForward { params: Res { id: pid, buffer: &pbuf }, x: x.res(), y: y.res() };
    g.dispatch(KernelKey::new(Family::Relu, Mode::Forward), binds, groups, &y.label)
}

pub fn relu_backward(g: &mut GpuBackend, y: &GpuTensor, dy: &GpuTensor, dx: &mut GpuTensor) -> Result<()> {
    same("relu_backward", y, dy)?;
    same("relu_backward", y, dx)?;
    for (what, t) in [("dx", &*dx), ("y", y), ("dy", dy)] {
        stacked("relu_backward", what, t, dx.members)?;
    }
    let (pid, pbuf) = g.uniform(&ElemParams { len: u("relu_backward", dx.total())?, ..Default::default() });
    let groups = g.groups_1d(dx.total());
    let binds = ReluBackward { params: Res { id: pid, buffer: &pbuf }, y: y.res(), dy: dy.res(), dx: dx.res() };
    g.dispatch(KernelKey::new(Family::Relu, Mode::Backward), binds, groups, &dx.label)
}

/// `db[k] = Σ_{n,s} dy[(n·K + k)·S + s]` for dy read as [N, K, S], per member of db (dy shared when it has
/// one member); one workgroup per channel and member. `op` is the backward op it belongs to (for errors).
pub fn bias_grad(
    g: &mut GpuBackend,
    op: &'static str,
    dy: &GpuTensor,
    (n, k, s): (usize, usize, usize),
    db: &mut GpuTensor,
) -> Result<()> {
    let members = db.members;
    let p = BiasGradParams {
        batch: u(op, n)?,
        channels: u(op, k)?,
        inner: u(op, s)?,
        src_ms: mstride(op, "dy", dy, members, Role::Input)?,
        dst_ms: mstride(op, "db", db, members, Role::Own)?,
        ..Default::default()
    };
    let (pid, pbuf) = g.uniform(&p);
    let binds = BiasGrad { params: Res { id: pid, buffer: &pbuf }, dy: dy.res(), db: db.res() };
    let groups = [u(op, k)?, 1, u(op, members)?];
    g.dispatch(KernelKey::new(Family::BiasGrad, Mode::Single), binds, groups, &db.label)
}
