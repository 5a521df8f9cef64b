//! Max-pool with any kernel and stride through pool.wgsl. With a member axis the kernels run unchanged over
//! P·N·C planes: stacked activations are contiguous, so member m's planes follow member m−1's.

use super::{check, rank, stacked, u};
use crate::backend::{PoolChain, PoolGeom};
use crate::gpu::bindings::{PoolBackward, PoolChainBackward, PoolForward};
use crate::gpu::buffer::Res;
use crate::gpu::kernels::{Epilogue, Family, KernelKey, Mode};
use crate::gpu::params::PoolParams;
use crate::gpu::{GpuBackend, GpuTensor};
use crate::{Error, Result};

/// The parameters for input `x` and the output shape they imply (checked as the CPU backend does).
/// `members` is the op's member count (every operand's, checked by the caller).
fn params(op: &'static str, x: &GpuTensor, geom: PoolGeom, members: usize) -> Result<(PoolParams, [usize; 4])> {
    rank(op, "x", &x.shape, 4)?;
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let (Some(ho), Some(wo)) = (geom.out_size(h), geom.out_size(w)) else {
        return Err(Error::shape(op, format!("{geom:?} does not fit input {:?}", x.shape)));
    };
    let p = PoolParams {
        planes: u(op, members * n * c)?,
        h: u(op, h)?,
        w: u(op, w)?,
        ho: u(op, ho)?,
        wo: u(op, wo)?,
        kernel: u(op, geom.kernel)?,
        stride: u(op, geom.stride)?,
        _pad0: 0,
    };
    Ok((p, [n, c, ho, wo]))
}

pub fn forward(g: &mut GpuBackend, x: &GpuTensor, geom: PoolGeom, y: &mut GpuTensor) -> Result<()> {
    let op = "max_pool2d";
    let (p, out) = params(op, x, geom, y.members)?;
    check(op, "y", &y.shape, &out)?;
    stacked(op, "y", y, y.members)?;
    stacked(op, "x", x, y.members)?;
    let (pid, pbuf) = g.uniform(&p);
    let groups = g.groups_1d(y.total());
    let binds = PoolForward { params: Res { id: pid, buffer: &pbuf }, x: x.res(), y: y.res() };
    g.dispatch(KernelKey::new(Family::MaxPool2d, Mode::Forward), binds, groups, &y.label)
}

/// Route dy to each window's winner (summed where windows overlap); with `relu` (x being a ReLU output)
/// only where x > 0.
pub fn backward(
    g: &mut GpuBackend,
    x: &GpuTensor,
    dy: &GpuTensor,
    geom: PoolGeom,
    dx: &mut GpuTensor,
    relu: bool,
) -> Result<()> {
    let op = if relu { "max_pool2d_backward_relu" } else { "max_pool2d_backward" };
    let (p, out) = params(op, x, geom, dx.members)?;
    check(op, "dy", &dy.shape, &out)?;
    check(op, "dx", &dx.shape, &x.shape)?;
    for (what, t) in [("dx", &*dx), ("x", x), ("dy", dy)] {
        stacked(op, what, t, dx.members)?;
    }
    let (pid, pbuf) = g.uniform(&p);
    let groups = g.groups_1d(dx.total());
    // With the mask, x is both the pool's input and the ReLU output masked by.
    let key =
        KernelKey::new(Family::MaxPool2d, Mode::Backward).with(if relu { Epilogue::Mask } else { Epilogue::None });
    let binds = PoolBackward { params: Res { id: pid, buffer: &pbuf }, x: x.res(), dy: dy.res(), dx: dx.res() };
    g.dispatch(key, binds, groups, &dx.label)
}

/// The backward of `conv2d_relu_pool`'s pools and ReLU: dx (the conv output's shape) gets dy at each window's
/// argmax where the pooled value y is > 0, else 0 (pool.wgsl `pool_chain_backward`, one gather).
pub fn chain_backward(
    g: &mut GpuBackend,
    y: &GpuTensor,
    argmax: &GpuTensor,
    dy: &GpuTensor,
    pools: PoolChain,
    dx: &mut GpuTensor,
) -> Result<()> {
    let op = "conv2d_relu_pool_backward";
    pools.check(op)?;
    rank(op, "dx", &dx.shape, 4)?;
    let [n, k, h, w] = [dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3]];
    let (Some(hp), Some(wp)) = (pools.out_size(h), pools.out_size(w)) else {
        return Err(Error::shape(op, format!("{pools:?} does not fit dx {:?}", dx.shape)));
    };
    for (what, t) in [("y", y), ("argmax", argmax), ("dy", dy)] {
        check(op, what, &t.shape, &[n, k, hp, wp])?;
        stacked(op, what, t, dx.members)?;
    }
    stacked(op, "dx", dx, dx.members)?;
    let e = pools.edge();
    let p = PoolParams {
        planes: u(op, dx.members * n * k)?,
        h: u(op, h)?,
        w: u(op, w)?,
        ho: u(op, hp)?,
        wo: u(op, wp)?,
        kernel: u(op, e)?,
        stride: u(op, e)?,
        _pad0: 0,
    };
    let (pid, pbuf) = g.uniform(&p);
    let groups = g.groups_1d(dx.total());
    let key = KernelKey::new(Family::MaxPool2d, Mode::Backward).with(Epilogue::ReluPool);
    let params = Res { id: pid, buffer: &pbuf };
    let binds = PoolChainBackward { params, dy: dy.res(), dx: dx.res(), pooled: y.res(), argmax: argmax.res() };
    g.dispatch(key, binds, groups, &dx.label)
}
