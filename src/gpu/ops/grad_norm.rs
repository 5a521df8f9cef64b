//! The global gradient norm through grad_norm.wgsl: partial sums of squares over the whole packed gradient
//! buffer, then one workgroup adds them in a fixed order and writes the square root into `norms[slot]`.
//!
//! Member axis: both passes take the member from workgroup z; member m reduces its own copy of the set
//! ([m·S, m·S + len) of the buffer, the same `len` and partial layout as a solo run, so the same sum) and
//! writes `norms[m·mstride + slot]`.

use super::{Role, mstride, u};
use crate::gpu::bindings::{NormFinish, NormPartials};
use crate::gpu::buffer::Res;
use crate::gpu::cursor::Field;
use crate::gpu::kernels::{Family, KernelKey, Mode};
use crate::gpu::packed::whole_pack;
use crate::gpu::params::NormParams;
use crate::gpu::{GpuBackend, GpuTensor, WG};
use crate::{Error, Result};

/// Values each workgroup of the first pass reduces (grad_norm.wgsl: WG threads × ITEMS).
const PER_WORKGROUP: usize = WG * 16;

pub fn grad_norm(g: &mut GpuBackend, grads: &[GpuTensor], norms: &mut GpuTensor, slot: usize) -> Result<()> {
    let op = "grad_norm";
    if grads.is_empty() {
        return Err(Error::shape(op, "no gradients given"));
    }
    if slot >= norms.numel() {
        return Err(Error::shape(op, format!("norm slot {slot} but `{}` holds {} norms", norms.label, norms.numel())));
    }
    let members = norms.members;
    let grads_ms = mstride(op, "grads", &grads[0], members, Role::Input)?;
    let norms_ms = mstride(op, "norms", norms, members, Role::Own)?;
    let (pack, grads) = whole_pack(op, "grads", grads)?;
    // One member's set: the sum of squares covers exactly what a solo set's would.
    let len = (pack.end / 4) as usize;
    let partials = len.div_ceil(PER_WORKGROUP);
    // Before recording: a flush for a changed slot must not split the two passes.
    let (cid, cbuf) = g.cursor(Field::NormSlot, slot, op)?;
    let (pid, pbuf) = g.uniform(&NormParams { len: u(op, len)?, partials: u(op, partials)?, grads_ms, norms_ms });
    let (sid, sbuf) = g.scratch((members * partials * 4) as u64)?;
    let (params, scratch) = (Res { id: pid, buffer: &pbuf }, Res { id: sid, buffer: &sbuf });
    let mut grid = g.groups_1d(partials * WG);
    grid[2] = u(op, members)?;
    let partials = NormPartials { params, grads, partials: scratch };
    g.dispatch(KernelKey::new(Family::GradNorm, Mode::Partials), partials, grid, &norms.label)?;
    let cursor = Res { id: cid, buffer: &cbuf };
    let finish = NormFinish { params, cursor, partials: scratch, norms: norms.res() };
    g.dispatch(KernelKey::new(Family::GradNorm, Mode::Finish), finish, [1, 1, u(op, members)?], &norms.label)
}
