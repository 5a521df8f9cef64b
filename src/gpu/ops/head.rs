//! The classifier head of a training step through head.wgsl: two dispatches (the rows' logits, loss terms,
//! dlogits and dx; then dw, db and the batch loss) instead of the four ops it stands for. Where the kernels do
//! not apply — more than `MAX_CLASSES` classes, or a bias that is not in the weight's gradient set (a
//! `bias: false` layer's scratch gradient) — the ops themselves run ([`linear_softmax_xent_ops`]).

use super::{Role, check, mstride, rank, u};
use crate::backend::{Head, linear_softmax_xent_ops};
use crate::gpu::GpuBackend;
use crate::gpu::bindings::{HeadForward, HeadWeights};
use crate::gpu::buffer::Res;
use crate::gpu::cursor::Field;
use crate::gpu::kernels::{Epilogue, Family, KernelKey, Mode};
use crate::gpu::params::HeadParams;
use crate::{Error, Result};

/// Classes head.wgsl holds per row in workgroup memory (its `LMAX`).
const MAX_CLASSES: usize = 64;
/// Rows per `head_forward` workgroup (its `R`).
const ROWS: usize = 16;

pub fn linear_softmax_xent(g: &mut GpuBackend, h: Head<'_, GpuBackend>) -> Result<()> {
    let op = "linear_softmax_xent";
    rank(op, "w", &h.w.shape, 2)?;
    let (l, i) = (h.w.shape[0], h.w.shape[1]);
    let n = *h.x.shape.first().ok_or_else(|| Error::shape(op, "x has no batch dimension"))?;
    let span = g.pair_span(h.dw, h.db);
    let (Some((span_id, w_at, b_at)), true, true) = (span, (1..=MAX_CLASSES).contains(&l), n > 0) else {
        return linear_softmax_xent_ops(g, h);
    };
    // The checks of the ops it replaces.
    if h.x.numel() != n * i {
        return Err(Error::shape(
            op,
            format!("x has shape {:?}, expected [{n}, …] with {} elements", h.x.shape, n * i),
        ));
    }
    check(op, "b", &h.b.shape, &[l])?;
    check(op, "logits", &h.logits.shape, &[n, l])?;
    check(op, "dlogits", &h.dlogits.shape, &[n, l])?;
    check(op, "dw", &h.dw.shape, &[l, i])?;
    check(op, "db", &h.db.shape, &[l])?;
    if h.labels.len != n {
        return Err(Error::shape(op, format!("{} labels for {n} rows", h.labels.len)));
    }
    if h.slot >= h.losses.numel() {
        let have = h.losses.numel();
        return Err(Error::shape(op, format!("loss slot {} but `{}` holds {have} losses", h.slot, h.losses.label)));
    }
    if let Some(dx) = &h.dx {
        check(op, "dx", &dx.shape, &h.x.shape)?;
    }
    let p = h.dlogits.members;
    let mut params = HeadParams {
        n: u(op, n)?,
        l: u(op, l)?,
        i: u(op, i)?,
        has_dx: u32::from(h.dx.is_some()),
        x_ms: mstride(op, "x", h.x, p, Role::Input)?,
        w_ms: mstride(op, "w", h.w, p, Role::Own)?,
        b_ms: mstride(op, "b", h.b, p, Role::Input)?,
        logits_ms: mstride(op, "logits", h.logits, p, Role::Own)?,
        dlogits_ms: mstride(op, "dlogits", h.dlogits, p, Role::Own)?,
        rows_ms: u(op, n)?,
        out_ms: mstride(op, "losses", h.losses, p, Role::Own)?,
        dwb_ms: mstride(op, "dw", h.dw, p, Role::Own)?,
        w_at,
        b_at,
        ..Default::default()
    };
    if let Some(dx) = &h.dx {
        params.dx_ms = mstride(op, "dx", dx, p, Role::Own)?;
    }
    let (pid, pbuf) = g.uniform(&params);
    let params = Res { id: pid, buffer: &pbuf };
    // The rows' loss terms, from the first dispatch to the second (its size differs from the placeholder's).
    let (rid, rbuf) = g.scratch((p * n).max(8) as u64 * 4)?;
    let row_loss = Res { id: rid, buffer: &rbuf };
    let placeholder = g.placeholder()?;
    let dx = h.dx.as_ref().map_or(Res { id: placeholder.0, buffer: &placeholder.1 }, |t| t.res());
    let epilogue = if h.relu_input && h.dx.is_some() { Epilogue::Mask } else { Epilogue::None };
    let forward = HeadForward {
        params,
        x: h.x.res(),
        w: h.w.res(),
        bias: h.b.res(),
        labels: h.labels.res(),
        logits: h.logits.res(),
        dlogits: h.dlogits.res(),
        row_loss,
        dx,
    };
    let key = KernelKey::new(Family::Head, Mode::Forward).with(epilogue);
    // The logits product and, when wanted, the dx product: 2·n·l·i FLOPs each.
    g.note_flops((p * n, l, if h.dx.is_some() { 2 * i } else { i }));
    g.dispatch(key, forward, [u(op, n.div_ceil(ROWS))?, 1, u(op, p)?], &h.dlogits.label)?;
    let (cid, cbuf) = g.cursor(Field::LossSlot, h.slot, op)?;
    let weights = HeadWeights {
        params,
        x: h.x.res(),
        cursor: Res { id: cid, buffer: &cbuf },
        dlogits: h.dlogits.res(),
        row_loss,
        dwb: Res { id: span_id, buffer: &h.dw.buffer },
        losses: h.losses.res(),
    };
    let key = KernelKey::new(Family::Head, Mode::BackwardWeight);
    g.note_flops((p * l, i, n));
    // dw's outputs, 256 per workgroup, then one workgroup per class for db.
    g.dispatch(key, weights, [u(op, (l * i).div_ceil(256) + l)?, 1, u(op, p)?], &h.dw.label)
}
