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
    let b = *x.shape.first().ok_or_else(|| Error::shape(op, "x has no batch dimension"))?;
    if images.members != 1 || x.members != 1 {
        return Err(Error::shape(op, "the dataset and the batch x are shared: they must have 1 member"));
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
        return Ok(());
    }
    let p = GatherParams { batch: u(op, b)?, dim: u(op, d)?, rows: u(op, m)?, order_len: u(op, order.len)? };
    let (cid, cbuf) = g.cursor(Field::BatchOffset, off, op)?;
    let (pid, pbuf) = g.uniform(&p);
    let groups = g.groups_1d(b * d);
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
    let (m, b) = (labels.len, y.len);
    let d = x.numel().checked_div(b).unwrap_or(0);
    if table.members != 1 || x.members != 1 {
        return Err(Error::shape(op, "the table and the batch x are shared: they must have 1 member"));
    }
    if table.numel() != 256 {
        return Err(Error::shape(op, format!("the table has {} values, not 256", table.numel())));
    }
    if x.numel() != b * d || pixels.len != (m * d).div_ceil(4) {
        return Err(Error::shape(
            op,
            format!("x {:?} for a batch of {b}, {} pixel words for {m} images of {d} bytes", x.shape, pixels.len),
        ));
    }
    if off.checked_add(b).is_none_or(|end| end > order.len) {
        return Err(Error::shape(
            op,
            format!("batch [{off}, {}) outside the order of length {}", off.saturating_add(b), order.len),
        ));
    }
    if b == 0 || d == 0 {
        return Ok(());
    }
    // Byte indices go up to m·d: they must fit the kernel's u32 arithmetic.
    u(op, m * d)?;
    let p = GatherParams { batch: u(op, b)?, dim: u(op, d)?, rows: u(op, m)?, order_len: u(op, order.len)? };
    let (cid, cbuf) = g.cursor(Field::BatchOffset, off, op)?;
    let (pid, pbuf) = g.uniform(&p);
    let groups = g.groups_1d(b * d);
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
