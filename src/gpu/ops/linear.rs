//! Linear layers through matmul.wgsl: forward x·wᵀ + b, backward-input dy·w, backward-weight dyᵀ·x.

use super::{TILE, check, reduce_splits, splits, u};
use crate::gpu::buffer::Res;
use crate::gpu::kernels::Kernel;
use crate::gpu::params::GemmParams;
use crate::gpu::{GpuBackend, GpuTensor};
use crate::{Error, Result};

/// C[m,n] = op(A)·op(B) (+ bias[col]); `kernel` is the unbiased variant (MatmulNT/NN/TN).
#[allow(clippy::too_many_arguments)]
fn gemm(
    g: &mut GpuBackend,
    kernel: Kernel,
    (m, n, k): (usize, usize, usize),
    a: Res<'_>,
    b: Res<'_>,
    bias: Option<Res<'_>>,
    out: Res<'_>,
    label: &str,
) -> Result<()> {
    let (s, chunk) = splits(m, n, k);
    let grid =
        |z: usize| -> Result<[u32; 3]> { Ok([u(label, n.div_ceil(TILE))?, u(label, m.div_ceil(TILE))?, u(label, z)?]) };
    let (mu, nu, ku) = (u(label, m)?, u(label, n)?, u(label, k)?);
    if s == 1 {
        let (pid, pbuf) = g.uniform(&GemmParams { m: mu, n: nu, k: ku, k_chunk: ku.max(1) });
        let kernel = if bias.is_some() { Kernel::MatmulNTBias } else { kernel };
        return g.dispatch(kernel, &[Res { id: pid, buffer: &pbuf }, a, b, bias.unwrap_or(a), out], grid(1)?, label);
    }
    let (pid, pbuf) = g.uniform(&GemmParams { m: mu, n: nu, k: ku, k_chunk: u(label, chunk)? });
    let (sid, sbuf) = g.scratch((s * m * n * 4) as u64)?;
    let parts = Res { id: sid, buffer: &sbuf };
    g.dispatch(kernel, &[Res { id: pid, buffer: &pbuf }, a, b, a, parts], grid(s)?, label)?;
    reduce_splits(g, parts, bias, out, m * n, n, s, label)
}

/// `y[n,o] = b[o] + Σ_i x[n,i]·w[o,i]`; x is read as [N, rest].
pub fn forward(g: &mut GpuBackend, x: &GpuTensor, w: &GpuTensor, b: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
    let op = "linear";
    let n = *x.shape.first().ok_or_else(|| Error::shape(op, "x has no batch dimension"))?;
    let i = x.numel().checked_div(n).unwrap_or(0);
    let o = *w.shape.first().unwrap_or(&0);
    check(op, "w", &w.shape, &[o, i])?;
    check(op, "b", &b.shape, &[o])?;
    check(op, "y", &y.shape, &[n, o])?;
    gemm(g, Kernel::MatmulNT, (n, o, i), x.res(), w.res(), Some(b.res()), y.res(), &y.label)
}

/// `dx = dy·w`; dx any shape with N·I elements.
pub fn backward_input(g: &mut GpuBackend, dy: &GpuTensor, w: &GpuTensor, dx: &mut GpuTensor) -> Result<()> {
    let op = "linear_backward_input";
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
    gemm(g, Kernel::MatmulNN, (n, i, o), dy.res(), w.res(), None, dx.res(), &dx.label)
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
    gemm(g, Kernel::MatmulTN, (o, i, n), dy.res(), x.res(), None, dw.res(), &dw.label)?;
    super::elementwise::bias_grad(g, dy, (n, o, 1), db)
}
