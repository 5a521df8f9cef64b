//! Linear layers through matmul.wgsl: forward x·wᵀ + b, backward-input dy·w, backward-weight dyᵀ·x.

use super::{Epilogue, TILE, check, reduce_splits, splits, u};
use crate::gpu::buffer::Res;
use crate::gpu::kernels::Kernel;
use crate::gpu::params::GemmParams;
use crate::gpu::{GpuBackend, GpuTensor};
use crate::{Error, Result};

/// C[m,n] = epilogue(op(A)·op(B)); `kernel` is the plain product (MatmulNT/NN/TN), which also computes
/// the split-K partials.
#[allow(clippy::too_many_arguments)]
fn gemm(
    g: &mut GpuBackend,
    kernel: Kernel,
    (m, n, k): (usize, usize, usize),
    a: Res<'_>,
    b: Res<'_>,
    epilogue: Epilogue<'_>,
    out: Res<'_>,
    label: &str,
) -> Result<()> {
    let (s, chunk) = splits(m, n, k);
    let grid =
        |z: usize| -> Result<[u32; 3]> { Ok([u(label, n.div_ceil(TILE))?, u(label, m.div_ceil(TILE))?, u(label, z)?]) };
    let (mu, nu, ku) = (u(label, m)?, u(label, n)?, u(label, k)?);
    if s == 1 {
        let (pid, pbuf) = g.uniform(&GemmParams { m: mu, n: nu, k: ku, k_chunk: ku.max(1) });
        let kernel = match (epilogue, kernel) {
            (Epilogue::None, k) => k,
            (Epilogue::Bias(_), Kernel::MatmulNT) => Kernel::MatmulNTBias,
            (Epilogue::BiasRelu(_), Kernel::MatmulNT) => Kernel::MatmulNTBiasRelu,
            (Epilogue::Mask(_), Kernel::MatmulNN) => Kernel::MatmulNNMask,
            (_, k) => unreachable!("no fused epilogue variant of {k:?}"),
        };
        let slot3 = epilogue.slot3().unwrap_or(a);
        return g.dispatch(kernel, &[Res { id: pid, buffer: &pbuf }, a, b, slot3, out], grid(1)?, label);
    }
    let (pid, pbuf) = g.uniform(&GemmParams { m: mu, n: nu, k: ku, k_chunk: u(label, chunk)? });
    let (sid, sbuf) = g.scratch((s * m * n * 4) as u64)?;
    let parts = Res { id: sid, buffer: &sbuf };
    g.dispatch(kernel, &[Res { id: pid, buffer: &pbuf }, a, b, a, parts], grid(s)?, label)?;
    reduce_splits(g, parts, epilogue, out, m * n, n, s, label)
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
    let epilogue = if relu { Epilogue::BiasRelu(b.res()) } else { Epilogue::Bias(b.res()) };
    gemm(g, Kernel::MatmulNT, (n, o, i), x.res(), w.res(), epilogue, y.res(), &y.label)
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
    let epilogue = mask.map_or(Epilogue::None, |m| Epilogue::Mask(m.res()));
    gemm(g, Kernel::MatmulNN, (n, i, o), dy.res(), w.res(), epilogue, dx.res(), &dx.label)
}

/// `dw = dyᵀ·x`, `db[o] = Σ_n dy[n,o]`.
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
    gemm(g, Kernel::MatmulTN, (o, i, n), dy.res(), x.res(), Epilogue::None, dw.res(), &dw.label)?;
    super::elementwise::bias_grad(g, dy, (n, o, 1), db)
}
