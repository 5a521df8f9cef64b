//! The CPU's batch gathers: rows of the resident dataset (f32 values, or bytes through the 256-entry table) in
//! the order's sequence, every row index checked before anything is written.

use super::CpuTensor;
use super::checks::{batch_rows, expect_len};
use crate::{Error, Result};

pub(super) fn gather_batch(
    images: &CpuTensor,
    labels: &[u32],
    order: &[u32],
    offset: usize,
    x: &mut CpuTensor,
    y: &mut [u32],
) -> Result<()> {
    let op = "gather_batch";
    if x.members != 1 || images.members != 1 {
        return Err(Error::shape(op, "the dataset and the batch x are shared: they must have 1 member"));
    }
    let (m, b) = (images.shape.first().copied().unwrap_or(0), y.len());
    let d = images.data.len().checked_div(m).unwrap_or(0);
    expect_len(op, "x", x.data.len(), b * d)?;
    expect_len(op, "labels", labels.len(), m)?;
    for (i, r) in batch_rows(op, order, offset, b, m)?.enumerate() {
        x.data[i * d..][..d].copy_from_slice(&images.data[r * d..][..d]);
        y[i] = labels[r];
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn gather_pixels(
    pixels: &[u32],
    table: &CpuTensor,
    labels: &[u32],
    order: &[u32],
    offset: usize,
    x: &mut CpuTensor,
    y: &mut [u32],
) -> Result<()> {
    let op = "gather_pixels";
    if x.members != 1 || table.members != 1 {
        return Err(Error::shape(op, "the table and the batch x are shared: they must have 1 member"));
    }
    expect_len(op, "table", table.data.len(), 256)?;
    let (m, b) = (labels.len(), y.len());
    let d = x.data.len().checked_div(b).unwrap_or(0);
    expect_len(op, "x", x.data.len(), b * d)?;
    if pixels.len() != (m * d).div_ceil(4) {
        return Err(Error::shape(op, format!("{} pixel words for {m} images of {d} bytes", pixels.len())));
    }
    for (i, r) in batch_rows(op, order, offset, b, m)?.enumerate() {
        for (j, v) in x.data[i * d..][..d].iter_mut().enumerate() {
            *v = table.data[crate::backend::packed_byte(pixels, r * d + j) as usize];
        }
        y[i] = labels[r];
    }
    Ok(())
}
