//! ReLU and bias gradients through elementwise.wgsl.

use super::u;
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
    let (pid, pbuf) = g.uniform(&ElemParams { len: u("relu", x.numel())?, ..Default::default() });
    let groups = g.groups_1d(x.numel());
    let binds = ReluForward { params: Res { id: pid, buffer: &pbuf }, x: x.res(), y: y.res() };
    g.dispatch(KernelKey::new(Family::Relu, Mode::Forward), binds, groups, &y.label)
}

pub fn relu_backward(g: &mut GpuBackend, y: &GpuTensor, dy: &GpuTensor, dx: &mut GpuTensor) -> Result<()> {
    same("relu_backward", y, dy)?;
    same("relu_backward", y, dx)?;
    let (pid, pbuf) = g.uniform(&ElemParams { len: u("relu_backward", y.numel())?, ..Default::default() });
    let groups = g.groups_1d(y.numel());
    let binds = ReluBackward { params: Res { id: pid, buffer: &pbuf }, y: y.res(), dy: dy.res(), dx: dx.res() };
    g.dispatch(KernelKey::new(Family::Relu, Mode::Backward), binds, groups, &dx.label)
}

/// `db[k] = Σ_{n,s} dy[(n·K + k)·S + s]` for dy read as [N, K, S]; one workgroup per channel.
pub fn bias_grad(
    g: &mut GpuBackend,
    dy: &GpuTensor,
    (n, k, s): (usize, usize, usize),
    db: &mut GpuTensor,
) -> Result<()> {
    let op = "bias_grad";
    let p = BiasGradParams { batch: u(op, n)?, channels: u(op, k)?, inner: u(op, s)?, _pad0: 0 };
    let (pid, pbuf) = g.uniform(&p);
    let binds = BiasGrad { params: Res { id: pid, buffer: &pbuf }, dy: dy.res(), db: db.res() };
    g.dispatch(KernelKey::new(Family::BiasGrad, Mode::Single), binds, [u(op, k)?, 1, 1], &db.label)
}
