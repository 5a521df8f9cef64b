//! 2×2 max-pool through pool.wgsl.

use super::{check, rank, u};
use crate::Result;
use crate::gpu::buffer::Res;
use crate::gpu::kernels::Kernel;
use crate::gpu::params::PoolParams;
use crate::gpu::{GpuBackend, GpuTensor};

fn params(op: &'static str, x: &GpuTensor) -> Result<PoolParams> {
    rank(op, "x", &x.shape, 4)?;
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    Ok(PoolParams {
        planes: u(op, n * c)?,
        h: u(op, h)?,
        w: u(op, w)?,
        ho: u(op, h / 2)?,
        wo: u(op, w / 2)?,
        ..Default::default()
    })
}

pub fn forward(g: &mut GpuBackend, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
    let p = params("maxpool2", x)?;
    let s = &x.shape;
    check("maxpool2", "y", &y.shape, &[s[0], s[1], s[2] / 2, s[3] / 2])?;
    let (pid, pbuf) = g.uniform(&p);
    let groups = g.groups_1d(y.numel());
    g.dispatch(Kernel::MaxPool2, &[Res { id: pid, buffer: &pbuf }, x.res(), y.res()], groups, &y.label)
}

/// Route dy to each window's winner; with `relu` (x being a ReLU output) only where x > 0.
pub fn backward(g: &mut GpuBackend, x: &GpuTensor, dy: &GpuTensor, dx: &mut GpuTensor, relu: bool) -> Result<()> {
    let op = if relu { "maxpool2_backward_relu" } else { "maxpool2_backward" };
    let p = params(op, x)?;
    let s = &x.shape;
    check(op, "dy", &dy.shape, &[s[0], s[1], s[2] / 2, s[3] / 2])?;
    check(op, "dx", &dx.shape, s)?;
    let (pid, pbuf) = g.uniform(&p);
    let groups = g.groups_1d(dx.numel());
    g.dispatch(
        if relu { Kernel::MaxPool2BackwardMask } else { Kernel::MaxPool2Backward },
        &[Res { id: pid, buffer: &pbuf }, x.res(), dy.res(), dx.res()],
        groups,
        &dx.label,
    )
}
