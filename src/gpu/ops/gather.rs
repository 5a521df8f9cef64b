//! Batch gather from the resident dataset through gather.wgsl. The batch is what a population's members
//! share (one-member inputs, read with member stride 0 by every op), so gather has no member axis.

use super::u;
use crate::gpu::bindings::{Gather, GatherPixels};
use crate::gpu::buffer::Res;
use crate::gpu::cursor::Field;
use crate::gpu::kernels::{Family, KernelKey, Mode};
use crate::gpu::params::GatherParams;
use crate::gpu::{GpuBackend, GpuIndices, GpuTensor};
use crate::{Error, Result};

/// The checks both gathers share — a batch of x's rows from a dataset of `m` images of `d` values, labels and
/// y to match, the batch inside the order — and the kernel's parameters; None for an empty batch.
fn batch_params(
    op: &'static str,
    (m, d): (usize, usize),
    x: &GpuTensor,
    (labels, order, off, y): (&GpuIndices, &GpuIndices, usize, &GpuIndices),
) -> Result<Option<GatherParams>> {
    let b = *x.shape.first().ok_or_else(|| Error::shape(op, "x has no batch dimension"))?;
    if x.members != 1 {
        return Err(Error::shape(op, "the batch x is shared by every member: it must have 1 member"));
    }
    if x.numel() != b * d {
        return Err(Error::shape(
            op,
            format!("x has shape {:?}, expected [{b}, …] with {} values per row", x.shape, d),
        ));
    }
    if labels.len != m || y.len != b {
        return Err(Error::shape(
            op,
            format!("{} labels for {m} images, y holds {} for a batch of {b}", labels.len, y.len),
        ));
    }
    if off.checked_add(b).is_none_or(|end| end > order.len) {
        return Err(Error::shape(
            op,
            format!("batch [{off}, {}) outside the order of length {}", off.saturating_add(b), order.len),
        ));
    }
    if b == 0 || d == 0 {
        return Ok(None);
    }
    // Dataset indices go up to m·d: they must fit the kernels' u32 arithmetic.
    u(op, m * d)?;
    Ok(Some(GatherParams { batch: u(op, b)?, dim: u(op, d)?, rows: u(op, m)?, order_len: u(op, order.len)? }))
}

pub fn gather_batch(
    g: &mut GpuBackend,
    images: &GpuTensor,
    labels: &GpuIndices,
    order: &GpuIndices,
    off: usize,
    x: &mut GpuTensor,
    y: &mut GpuIndices,
) -> Result<()> {
    let op = "gather_batch";
    let m = *images.shape.first().ok_or_else(|| Error::shape(op, "images has no rows"))?;
    let d = images.numel().checked_div(m).unwrap_or(0);
    if images.members != 1 {
        return Err(Error::shape(op, "the dataset is shared by every member: it must have 1 member"));
    }
    let Some(p) = batch_params(op, (m, d), x, (labels, order, off, y))? else { return Ok(()) };
    let (cid, cbuf) = g.cursor(Field::BatchOffset, off, op)?;
    let (pid, pbuf) = g.uniform(&p);
    let groups = g.groups_1d(p.batch as usize * d);
    let binds = Gather {
        params: Res { id: pid, buffer: &pbuf },
        cursor: Res { id: cid, buffer: &cbuf },
        images: images.res(),
        labels: labels.res(),
        order: order.res(),
        x: x.res(),
        y: y.res(),
    };
    g.dispatch(KernelKey::new(Family::Gather, Mode::Single), binds, groups, &x.label)
}

#[allow(clippy::too_many_arguments)]
pub fn gather_pixels(
    g: &mut GpuBackend,
    pixels: &GpuIndices,
    table: &GpuTensor,
    labels: &GpuIndices,
    order: &GpuIndices,
    off: usize,
    x: &mut GpuTensor,
    y: &mut GpuIndices,
) -> Result<()> {
    let op = "gather_pixels";
    if table.members != 1 || table.numel() != 256 {
        return Err(Error::shape(op, format!("the table has {} values, not 256 (one member)", table.numel())));
    }
    let m = labels.len;
    let d = x.numel().checked_div(y.len).unwrap_or(0);
    if pixels.len != (m * d).div_ceil(4) {
        return Err(Error::shape(op, format!("{} pixel words for {m} images of {d} bytes", pixels.len)));
    }
    let Some(p) = batch_params(op, (m, d), x, (labels, order, off, y))? else { return Ok(()) };
    let (cid, cbuf) = g.cursor(Field::BatchOffset, off, op)?;
    let (pid, pbuf) = g.uniform(&p);
    let groups = g.groups_1d(p.batch as usize * d);
    let binds = GatherPixels {
        params: Res { id: pid, buffer: &pbuf },
        cursor: Res { id: cid, buffer: &cbuf },
        labels: labels.res(),
        order: order.res(),
        x: x.res(),
        y: y.res(),
        pixels: pixels.res(),
        table: table.res(),
    };
    g.dispatch(KernelKey::new(Family::Gather, Mode::Pixels), binds, groups, &x.label)
}
