//! Max-pool with any kernel and stride through pool.wgsl. With a member axis the kernels run unchanged over
//! P·N·C planes: stacked activations are contiguous, so member m's planes follow member m−1's.

use super::{check, rank, stacked, u};
use crate::backend::PoolGeom;
use crate::gpu::bindings::{PoolBackward, PoolForward};
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
