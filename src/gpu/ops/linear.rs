//! Linear layers through matmul.wgsl: forward x·wᵀ + b, backward-input dy·w, backward-weight dyᵀ·x; with a
//! member axis, one dispatch for every member (workgroup z), each operand at its own member stride.

use super::{Fused, ReduceStrides, Role, TILE, check, mstride, reduce_splits, splits, u};
use crate::gpu::bindings::Gemm;
use crate::gpu::buffer::Res;
use crate::gpu::kernels::{Epilogue, Family, KernelKey, Mode};
use crate::gpu::params::GemmParams;
use crate::gpu::{GpuBackend, GpuTensor};
use crate::{Error, Result};

/// Member strides of a GEMM's operands and the op's member count P.
#[derive(Clone, Copy)]
struct Strides {
    p: usize,
    a: u32,
    b: u32,
    e: u32,
    c: u32,
}

/// With `bias_grad` (backward-weight only) `out` spans dw and db, at these element offsets, and the dispatch
/// also writes db = the row sums of A, summed as `bias_grad` sums them.
#[derive(Clone, Copy)]
struct BiasOut {
    w_at: u32,
    b_at: u32,
}

/// C[m,n] = epilogue(op(A)·op(B)) for each of `ms.p` members; `mode` picks op (Forward: A·Bᵀ, BackwardInput:
/// A·B, BackwardWeight: Aᵀ·B). Split, the plain product computes the partials and the reduction applies the
/// epilogue. The split count is one member's, so each member's sum runs in the solo order.
#[allow(clippy::too_many_arguments)]
fn gemm(
    g: &mut GpuBackend,
    mode: Mode,
    (m, n, k): (usize, usize, usize),
    a: Res<'_>,
    b: Res<'_>,
    fused: Fused<'_>,
    out: Res<'_>,
    ms: Strides,
    bias_grad: Option<BiasOut>,
    label: &str,
) -> Result<()> {
    let plain = KernelKey::new(Family::Matmul, mode).with(if bias_grad.is_some() {
        Epilogue::BiasGrad
    } else {
        Epilogue::None
    });
    let (s, chunk) = splits(m, n, k);
    // A split's partial: [m·n | m bias sums] with the bias gradient folded in.
    let part = m * n + if bias_grad.is_some() { m } else { 0 };
    // With the bias gradient, ⌈m / splits⌉ more workgroups in x (see matmul.wgsl `bias_sums`).
    let extra = if bias_grad.is_some() { m.div_ceil(s) } else { 0 };
    let grid = |z: usize| -> Result<[u32; 3]> {
        Ok([u(label, n.div_ceil(TILE) + extra)?, u(label, m.div_ceil(TILE))?, u(label, z * ms.p)?])
    };
    let (mu, nu, ku) = (u(label, m)?, u(label, n)?, u(label, k)?);
    let params = |k_chunk: u32, splits: usize, e_ms: u32, c_ms: u32, (c_at, bias_at): (u32, u32)| {
        Ok::<_, crate::Error>(GemmParams {
            m: mu,
            n: nu,
            k: ku,
            k_chunk,
            splits: u(label, splits)?,
            a_ms: ms.a,
            b_ms: ms.b,
            e_ms,
            c_ms,
            c_at,
            bias_at,
            part: u(label, part)?,
        })
    };
    g.note_flops((m * ms.p, n, k));
    if s == 1 {
        let at = bias_grad.map_or((0, 0), |o| (o.w_at, o.b_at));
        let (pid, pbuf) = g.uniform(&params(ku.max(1), 1, ms.e, ms.c, at)?);
        let key = if bias_grad.is_some() { plain } else { plain.with(fused.epilogue()) };
        debug_assert!(key.exists(), "no fused epilogue variant {key}");
        // Without an epilogue the operand is unread; any buffer will do.
        let epilogue = fused.operand().unwrap_or(a);
        let params = Res { id: pid, buffer: &pbuf };
        return g.dispatch(key, Gemm { params, a, b, epilogue, out }, grid(1)?, label);
    }
    // Partials [member][split][part]: member m's slices start at m·(s·part).
    let (pid, pbuf) = g.uniform(&params(u(label, chunk)?, s, 0, u(label, s * part)?, (0, mu * nu))?);
    let (sid, sbuf) = g.scratch((ms.p * s * part * 4) as u64)?;
    let parts = Res { id: sid, buffer: &sbuf };
    let params = Res { id: pid, buffer: &pbuf };
    g.dispatch(plain, Gemm { params, a, b, epilogue: a, out: parts }, grid(s)?, label)?;
    let mut rs = ReduceStrides::plain(ms.p, ms.e, ms.c);
    if let Some(o) = bias_grad {
        rs.head_at = o.w_at;
        rs.tail = Some((mu * nu, o.b_at));
    }
    reduce_splits(g, parts, fused, out, part, n, s, rs, label)
}

/// `y[n,o] = b[o] + Σ_i x[n,i]·w[o,i]`, and `max(y, 0)` when `relu`; x is read as [N, rest].
pub fn forward(
    g: &mut GpuBackend,
    x: &GpuTensor,
    w: &GpuTensor,
    b: &GpuTensor,
    y: &mut GpuTensor,
    relu: bool,
) -> Result<()> {
    let op = if relu { "linear_relu" } else { "linear" };
    let n = *x.shape.first().ok_or_else(|| Error::shape(op, "x has no batch dimension"))?;
    let i = x.numel().checked_div(n).unwrap_or(0);
    let o = *w.shape.first().unwrap_or(&0);
    check(op, "w", &w.shape, &[o, i])?;
    check(op, "b", &b.shape, &[o])?;
    check(op, "y", &y.shape, &[n, o])?;
    let p = y.members;
    let ms = Strides {
        p,
        a: mstride(op, "x", x, p, Role::Input)?,
        b: mstride(op, "w", w, p, Role::Own)?,
        e: mstride(op, "b", b, p, Role::Input)?,
        c: mstride(op, "y", y, p, Role::Own)?,
    };
    let fused = if relu { Fused::BiasRelu(b.res()) } else { Fused::Bias(b.res()) };
    gemm(g, Mode::Forward, (n, o, i), x.res(), w.res(), fused, y.res(), ms, None, &y.label)
}

/// `dx = dy·w`, and 0 wherever `mask` (the ReLU output that fed this layer, shaped like dx) is not > 0;
/// dx any shape with N·I elements.
pub fn backward_input(
    g: &mut GpuBackend,
    dy: &GpuTensor,
    w: &GpuTensor,
    mask: Option<&GpuTensor>,
    dx: &mut GpuTensor,
) -> Result<()> {
    let op = if mask.is_some() { "linear_backward_input_relu" } else { "linear_backward_input" };
    super::rank(op, "w", &w.shape, 2)?;
    let (o, i) = (w.shape[0], w.shape[1]);
    let n = *dy.shape.first().unwrap_or(&0);
    check(op, "dy", &dy.shape, &[n, o])?;
    if dx.numel() != n * i || dx.shape.first() != Some(&n) {
        return Err(Error::shape(
            op,
            format!("dx has shape {:?}, expected [{n}, …] with {} elements", dx.shape, n * i),
        ));
    }
    if let Some(m) = mask {
        check(op, "mask", &m.shape, &dx.shape)?;
    }
    let p = dx.members;
    let ms = Strides {
        p,
        a: mstride(op, "dy", dy, p, Role::Input)?,
        b: mstride(op, "w", w, p, Role::Own)?,
        e: mask.map_or(Ok(0), |m| mstride(op, "mask", m, p, Role::Input))?,
        c: mstride(op, "dx", dx, p, Role::Own)?,
    };
    let fused = mask.map_or(Fused::None, |m| Fused::Mask(m.res()));
    gemm(g, Mode::BackwardInput, (n, i, o), dy.res(), w.res(), fused, dx.res(), ms, None, &dx.label)
}

/// `dw = dyᵀ·x`, `db[o] = Σ_n dy[n,o]`: one dispatch when dw and db are views of one gradient set (a span
/// binding covers both; db bit for bit `bias_grad`'s), else the product and `bias_grad` (a `bias: false`
/// layer's scratch db).
pub fn backward_weight(
    g: &mut GpuBackend,
    x: &GpuTensor,
    dy: &GpuTensor,
    dw: &mut GpuTensor,
    db: &mut GpuTensor,
) -> Result<()> {
    let op = "linear_backward_weight";
    super::rank(op, "dy", &dy.shape, 2)?;
    let (n, o) = (dy.shape[0], dy.shape[1]);
    if x.shape.first() != Some(&n) {
        return Err(Error::shape(op, format!("x has shape {:?}, expected batch {n}", x.shape)));
    }
    let i = x.numel().checked_div(n).unwrap_or(0);
    check(op, "dw", &dw.shape, &[o, i])?;
    check(op, "db", &db.shape, &[o])?;
    let p = dw.members;
    let ms = Strides {
        p,
        a: mstride(op, "dy", dy, p, Role::Input)?,
        b: mstride(op, "x", x, p, Role::Input)?,
        e: 0,
        c: mstride(op, "dw", dw, p, Role::Own)?,
    };
    mstride(op, "db", db, p, Role::Own)?;
    let dims = (o, i, n);
    if let Some((id, w_at, b_at)) = g.pair_span(dw, db) {
        let out = Res { id, buffer: &dw.buffer };
        let folded = Some(BiasOut { w_at, b_at });
        return gemm(g, Mode::BackwardWeight, dims, dy.res(), x.res(), Fused::None, out, ms, folded, &dw.label);
    }
    gemm(g, Mode::BackwardWeight, dims, dy.res(), x.res(), Fused::None, dw.res(), ms, None, &dw.label)?;
    super::elementwise::bias_grad(g, op, dy, (n, o, 1), db)
}
