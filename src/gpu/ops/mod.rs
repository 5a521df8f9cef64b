//! One launcher per kernel family: shape checks (as the CPU backend does them), member checks, parameter
//! uniforms, grids.
//!
//! Member axis (see `crate::backend`): an op's P is its outputs' member count; its parameters and state must
//! have P members too, while an input may have 1 (shared: the kernel reads it with member stride 0). Every
//! kernel takes each operand's member stride in its parameters and the member from a workgroup dimension, so a
//! population is one dispatch per op and member m computes exactly what a solo run on its data computes: tile
//! and split choices depend on one member's sizes only.

pub mod conv;
pub mod elementwise;
pub mod gather;
pub mod grad_norm;
pub mod head;
pub mod linear;
pub mod pool;
pub mod update;
pub mod xent;

use super::bindings::Reduce;
use super::buffer::Res;
use super::kernels::{Epilogue, Family, KernelKey, Mode};
use super::params::ReduceParams;
use super::{GpuBackend, GpuTensor};
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

/// How an operand's member count must relate to the op's P.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// An output, a parameter or optimizer state: exactly P members.
    Own,
    /// An input: P members, or 1 shared by every member.
    Input,
}

/// The member stride (in elements) the kernel uses for operand `t` of an op with `p` members: its own stride,
/// or 0 for a shared one-member input. Any other count is an [`Error::Shape`] naming the op.
pub(crate) fn mstride(op: &'static str, what: &str, t: &GpuTensor, p: usize, role: Role) -> Result<u32> {
    if t.members == p {
        return if p == 1 { Ok(0) } else { u(op, t.mstride) };
    }
    if t.members == 1 && role == Role::Input {
        return Ok(0);
    }
    let want = if role == Role::Input { format!("{p} or 1 (shared)") } else { p.to_string() };
    Err(Error::shape(op, format!("`{}` ({what}) has {} members, expected {want}", t.label, t.members)))
}

/// Every operand of a kernel that runs over P·N stacked rows unchanged (ReLU, pooling): exactly `p` members,
/// contiguous (a shared input would need a stride of 0, which those kernels do not have).
pub(crate) fn stacked(op: &'static str, what: &str, t: &GpuTensor, p: usize) -> Result<()> {
    if t.members != p {
        return Err(Error::shape(
            op,
            format!("`{}` ({what}) has {} members, expected {p} (this op shares no input)", t.label, t.members),
        ));
    }
    if p > 1 && t.mstride != t.numel() {
        return Err(Error::shape(
            op,
            format!("`{}` ({what}) is a packed view; this op needs contiguous members", t.label),
        ));
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

/// Member strides of a split-K reduction's epilogue operand and output, and where its sums go in the output.
#[derive(Clone, Copy)]
pub(crate) struct ReduceStrides {
    pub members: usize,
    pub epilogue: u32,
    pub out: u32,
    /// Where the product starts in `out` (dw's place when `out` spans dw and db).
    pub head_at: u32,
    /// For partials that end in a bias gradient ([m·n dw | m db]): the index of db's first element in a
    /// partial, and where db starts in `out`.
    pub tail: Option<(u32, u32)>,
}

impl ReduceStrides {
    /// The sums go to `out` as they are laid out in the partials.
    pub(crate) fn plain(members: usize, epilogue: u32, out: u32) -> ReduceStrides {
        ReduceStrides { members, epilogue, out, head_at: 0, tail: None }
    }
}

/// `out = epilogue(Σ_z parts[z])`, the second half of a split-K product, for every member: parts are laid out
/// [member][split][len], member m's sum goes to `out[m·out_stride + head_at ..]` (a bias tail to its own place).
#[allow(clippy::too_many_arguments)]
pub(crate) fn reduce_splits(
    g: &mut GpuBackend,
    parts: Res<'_>,
    fused: Fused<'_>,
    out: Res<'_>,
    len: usize,
    n: usize,
    splits: usize,
    ms: ReduceStrides,
    label: &str,
) -> Result<()> {
    let (pid, pbuf) = g.uniform(&ReduceParams {
        len: u(label, len)?,
        n: u(label, n)?,
        splits: u(label, splits)?,
        members: u(label, ms.members)?,
        e_ms: ms.epilogue,
        out_ms: ms.out,
        head_at: ms.head_at,
        tail: ms.tail.map_or(u(label, len), |(t, _)| Ok(t))?,
        tail_at: ms.tail.map_or(0, |(_, at)| at),
        ..Default::default()
    });
    let key = KernelKey::new(Family::ReduceSplits, Mode::Single).with(fused.epilogue());
    let groups = g.groups_1d(len * ms.members);
    let params = Res { id: pid, buffer: &pbuf };
    // Without an epilogue the operand is unread; any buffer will do.
    let epilogue = fused.operand().unwrap_or(parts);
    g.dispatch(key, Reduce { params, parts, epilogue, out }, groups, label)
}
