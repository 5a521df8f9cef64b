//! One launcher per kernel family: shape checks (as the CPU backend does them), parameter uniforms, grids.

pub mod conv;
pub mod elementwise;
pub mod gather;
pub mod grad_norm;
pub mod linear;
pub mod pool;
pub mod update;
pub mod xent;

use super::GpuBackend;
use super::bindings::Reduce;
use super::buffer::Res;
use super::kernels::{Epilogue, Family, KernelKey, Mode};
use super::params::ReduceParams;
use crate::{Error, Result};

/// Tile edge of the GEMM kernels (BM = BN in matmul.wgsl / conv2d.wgsl).
pub(crate) const TILE: usize = 64;
/// k-slice depth of the GEMM kernels (BK).
const TILE_K: usize = 16;

pub(crate) fn check(op: &'static str, what: &str, got: &[usize], want: &[usize]) -> Result<()> {
    if got != want {
        return Err(Error::shape(op, format!("{what} has shape {got:?}, expected {want:?}")));
    }
    Ok(())
}

pub(crate) fn rank(op: &'static str, what: &str, shape: &[usize], r: usize) -> Result<()> {
    if shape.len() != r {
        return Err(Error::shape(op, format!("{what} has shape {shape:?}, expected {r} dimensions")));
    }
    Ok(())
}

/// A u32 for a shader parameter, or a device-limit error (shaders index with u32).
pub(crate) fn u(op: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::DeviceLimit(format!("{op}: size {v} does not fit the shaders' 32-bit indices")))
}

/// Split-K factor and chunk for an m×n output reducing over k: when the output covers few tiles (dw of a
/// conv, the batch-128 forward of fc1) the reduction is cut into chunks of ≥ 256 so that ~256 workgroups
/// run; the chunks are summed afterwards in a fixed order.
pub(crate) fn splits(m: usize, n: usize, k: usize) -> (usize, usize) {
    let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
    let want = 256usize.div_ceil(tiles.max(1)).min(k / 256).max(1);
    let chunk = k.div_ceil(want).div_ceil(TILE_K) * TILE_K;
    (k.div_ceil(chunk.max(1)).max(1), chunk.max(TILE_K))
}

/// What a GEMM does to each output before storing it, with the tensor it reads (bound as the layout's
/// `epilogue` operand).
#[derive(Clone, Copy)]
pub(crate) enum Fused<'a> {
    None,
    /// `+ bias[col]`
    Bias(Res<'a>),
    /// `max(· + bias[col], 0)`: the forward of a linear + ReLU layer.
    BiasRelu(Res<'a>),
    /// `· where mask[i] > 0 else 0`: backward through the ReLU whose output `mask` (shaped like the product)
    /// fed the layer.
    Mask(Res<'a>),
}

impl<'a> Fused<'a> {
    /// The tensor the epilogue reads.
    pub(crate) fn operand(self) -> Option<Res<'a>> {
        match self {
            Fused::None => None,
            Fused::Bias(r) | Fused::BiasRelu(r) | Fused::Mask(r) => Some(r),
        }
    }

    /// The kernel variant's epilogue.
    pub(crate) fn epilogue(self) -> Epilogue {
        match self {
            Fused::None => Epilogue::None,
            Fused::Bias(_) => Epilogue::Bias,
            Fused::BiasRelu(_) => Epilogue::BiasRelu,
            Fused::Mask(_) => Epilogue::Mask,
        }
    }
}

/// `out = epilogue(Σ_z parts[z])`, the second half of a split-K product.
#[allow(clippy::too_many_arguments)]
pub(crate) fn reduce_splits(
    g: &mut GpuBackend,
    parts: Res<'_>,
    fused: Fused<'_>,
    out: Res<'_>,
    len: usize,
    n: usize,
    splits: usize,
    label: &str,
) -> Result<()> {
    let (pid, pbuf) =
        g.uniform(&ReduceParams { len: u(label, len)?, n: u(label, n)?, splits: u(label, splits)?, _pad0: 0 });
    let key = KernelKey::new(Family::ReduceSplits, Mode::Single).with(fused.epilogue());
    let groups = g.groups_1d(len);
    let params = Res { id: pid, buffer: &pbuf };
    // Without an epilogue the operand is unread; any buffer will do.
    let epilogue = fused.operand().unwrap_or(parts);
    g.dispatch(key, Reduce { params, parts, epilogue, out }, groups, label)
}
