//! k×k convolution with stride and zero padding through conv2d.wgsl (implicit GEMM); dw's long reduction is
//! split (split-K). With a member axis every mode is one dispatch: workgroup z = member·splits + split, each
//! operand at its member stride; tile and split count come from one member's sizes, so every member runs the
//! solo kernel's exact arithmetic.

use super::{ReduceStrides, Role, check, mstride, rank, reduce_splits, splits, u};
use crate::backend::{ConvGeom, PoolChain};
use crate::gpu::bindings::{ConvPool, Gemm};
use crate::gpu::buffer::Res;
use crate::gpu::kernels::{Epilogue, Family, KernelKey, Mode, Tile};
use crate::gpu::params::ConvParams;
use crate::gpu::{GpuBackend, GpuTensor};
use crate::{Error, Result};

/// A convolution's sizes: input [n, c, h, w], weight [k, c, ks, ks], output [n, k, ho, wo].
struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    ks: usize,
    ho: usize,
    wo: usize,
}

/// Check the input `x` (x or dx) and the weight `w` (w or dw) against `geom`, as the CPU backend does.
fn dims(op: &'static str, x: &GpuTensor, w: &GpuTensor, geom: ConvGeom) -> Result<Dims> {
    rank(op, "x", &x.shape, 4)?;
    rank(op, "w", &w.shape, 4)?;
    let [n, c, h, wd] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let (k, ks) = (w.shape[0], w.shape[2]);
    check(op, "w", &w.shape, &[k, c, ks, ks])?;
    let (Some(ho), Some(wo)) = (geom.out_size(h, ks), geom.out_size(wd, ks)) else {
        return Err(Error::shape(op, format!("a {ks}×{ks} kernel with {geom:?} does not fit input {:?}", x.shape)));
    };
    Ok(Dims { n, c, h, w: wd, k, ks, ho, wo })
}

impl Dims {
    fn out_shape(&self) -> [usize; 4] {
        [self.n, self.k, self.ho, self.wo]
    }

    fn params(
        &self,
        op: &str,
        geom: ConvGeom,
        (gm, gn, gk): (usize, usize, usize),
        chunk: usize,
        ms: Strides,
    ) -> Result<ConvParams> {
        Ok(ConvParams {
            batch: u(op, self.n)?,
            cin: u(op, self.c)?,
            h: u(op, self.h)?,
            w: u(op, self.w)?,
            cout: u(op, self.k)?,
            ho: u(op, self.ho)?,
            wo: u(op, self.wo)?,
            ks: u(op, self.ks)?,
            stride: u(op, geom.stride)?,
            pad: u(op, geom.padding)?,
            m: u(op, gm)?,
            n: u(op, gn)?,
            k: u(op, gk)?,
            k_chunk: u(op, chunk.max(1))?,
            splits: u(op, ms.splits)?,
            a_ms: ms.a,
            b_ms: ms.b,
            e_ms: ms.e,
            out_ms: ms.out,
            out_at: ms.out_at,
            bias_at: ms.bias_at,
            part: u(op, ms.part)?,
            ..Default::default()
        })
    }
}

/// The split count and the member strides (elements) of the GEMM's operands; for split partials `out` is
/// splits·part (parts laid out [member][split][part]). `out_at`, `bias_at`, `part`: see `ConvParams`.
#[derive(Clone, Copy)]
struct Strides {
    splits: usize,
    a: u32,
    b: u32,
    e: u32,
    out: u32,
    out_at: u32,
    bias_at: u32,
    part: usize,
}

impl Strides {
    /// One split, the output at the start of its binding.
    fn single(a: u32, b: u32, e: u32, out: u32) -> Strides {
        Strides { splits: 1, a, b, e, out, out_at: 0, bias_at: 0, part: 0 }
    }
}

/// Workgroups a larger tile must still give for it to be picked: at least one per multiprocessor of a large GPU
/// (an H100 has 132), else the smaller tile's extra workgroups are worth more than the larger's reuse.
const MIN_GROUPS: usize = 128;

/// The tile for an m×n product run `z` times (members · splits), sized to the product: the narrow 32×16 tile
/// for an output of at most 32×16 (conv1's 32×9 weight gradient: a 64×64 tile would be 93% empty); 32×128 for
/// at most 32 rows and 128+ columns (a 64-row tile would compute rows that do not exist: on lavapipe this took
/// conv2's backward-input from 2.3× to 1.5× its forward's time); 64×128 or 128×128 (4×8 or 8×8 outputs per
/// thread) for up to 64 or more rows and 128+ columns, where the grid stays at `MIN_GROUPS` or more; else
/// 64×64.
fn pick_tile(m: usize, n: usize, z: usize) -> Tile {
    let groups = |t: Tile| {
        let (bm, bn) = t.shape();
        m.div_ceil(bm) * n.div_ceil(bn) * z
    };
    let wide = |t: Tile| n >= 128 && groups(t) >= MIN_GROUPS;
    if m <= 32 && n <= 16 {
        Tile::Narrow
    } else if m <= 32 && n >= 128 {
        Tile::M32
    } else if m <= 64 && wide(Tile::M64) {
        Tile::M64
    } else if m > 64 && wide(Tile::Square128) {
        Tile::Square128
    } else {
        Tile::Square64
    }
}

/// The kernel for an m×n product run `z` times, and its tile's rows and columns: the tile from its shape
/// ([`pick_tile`]) unless the backend is told to use another (`GpuBackend::set_conv_tile`).
fn kernel(
    g: &GpuBackend,
    mode: Mode,
    epilogue: Epilogue,
    (m, n, z): (usize, usize, usize),
) -> (KernelKey, usize, usize) {
    let tile = g.conv_tile.unwrap_or_else(|| pick_tile(m, n, z));
    let (bm, bn) = tile.shape();
    (KernelKey::new(Family::Conv2d, mode).with(epilogue).tile(tile), bm, bn)
}

/// The member strides of a forward conv: w and y the op's own, x and b inputs (shared when they have one member).
fn forward_strides(op: &'static str, x: &GpuTensor, w: &GpuTensor, b: &GpuTensor, y: &GpuTensor) -> Result<Strides> {
    let p = y.members;
    Ok(Strides::single(
        mstride(op, "w", w, p, Role::Own)?,
        mstride(op, "x", x, p, Role::Input)?,
        mstride(op, "b", b, p, Role::Input)?,
        mstride(op, "y", y, p, Role::Own)?,
    ))
}

/// Workgroups: the output tiles in x and y, z = members·splits.
fn grid(op: &str, (bm, bn): (usize, usize), m: usize, n: usize, z: usize) -> Result<[u32; 3]> {
    Ok([u(op, n.div_ceil(bn))?, u(op, m.div_ceil(bm))?, u(op, z)?])
}

/// `y = conv(x, w) + b`, and `max(y, 0)` when `relu`.
pub fn forward(
    g: &mut GpuBackend,
    x: &GpuTensor,
    w: &GpuTensor,
    b: &GpuTensor,
    geom: ConvGeom,
    y: &mut GpuTensor,
    relu: bool,
) -> Result<()> {
    let op = if relu { "conv2d_relu" } else { "conv2d" };
    let d = dims(op, x, w, geom)?;
    check(op, "b", &b.shape, &[d.k])?;
    check(op, "y", &y.shape, &d.out_shape())?;
    let p = y.members;
    let ms = forward_strides(op, x, w, b, y)?;
    let gemm = (d.k, d.n * d.ho * d.wo, d.c * d.ks * d.ks);
    let (pid, pbuf) = g.uniform(&d.params(op, geom, gemm, gemm.2, ms)?);
    let epilogue = if relu { Epilogue::Relu } else { Epilogue::None };
    let (key, bm, bn) = kernel(g, Mode::Forward, epilogue, (gemm.0, gemm.1, p));
    let groups = grid(op, (bm, bn), gemm.0, gemm.1, p)?;
    let params = Res { id: pid, buffer: &pbuf };
    // The conv forward always adds its bias: it is the epilogue operand of both variants.
    g.note_flops((gemm.0 * p, gemm.1, gemm.2));
    g.dispatch(key, Gemm { params, a: w.res(), b: x.res(), epilogue: b.res(), out: y.res() }, groups, &y.label)
}

/// `y = maxpools(max(conv(x, w) + b, 0))` for a chain of pools (`PoolChain`), with each pooled value's place in
/// its window in `argmax`: one dispatch, the conv output never written (conv2d.wgsl `conv2d_pool`).
#[allow(clippy::too_many_arguments)]
pub fn forward_pool(
    g: &mut GpuBackend,
    x: &GpuTensor,
    w: &GpuTensor,
    b: &GpuTensor,
    geom: ConvGeom,
    pools: PoolChain,
    y: &mut GpuTensor,
    argmax: &mut GpuTensor,
) -> Result<()> {
    let op = "conv2d_relu_pool";
    pools.check(op)?;
    let d = dims(op, x, w, geom)?;
    check(op, "b", &b.shape, &[d.k])?;
    let (Some(hp), Some(wp)) = (pools.out_size(d.ho), pools.out_size(d.wo)) else {
        return Err(Error::shape(op, format!("{pools:?} does not fit the conv output {:?}", d.out_shape())));
    };
    let out = [d.n, d.k, hp, wp];
    check(op, "y", &y.shape, &out)?;
    check(op, "argmax", &argmax.shape, &out)?;
    let p = y.members;
    let ms = forward_strides(op, x, w, b, y)?;
    // The GEMM's columns are the pooled windows' cells: (n, a, b, di, dj).
    let e = pools.edge();
    let gemm = (d.k, d.n * hp * wp * e * e, d.c * d.ks * d.ks);
    let mut params = d.params(op, geom, gemm, gemm.2, ms)?;
    (params.inner, params.outer, params.hp, params.wp) =
        (u(op, pools.inner)?, u(op, pools.outer)?, u(op, hp)?, u(op, wp)?);
    params.arg_ms = mstride(op, "argmax", argmax, p, Role::Own)?;
    let (pid, pbuf) = g.uniform(&params);
    let (mut key, mut bm, mut bn) = kernel(g, Mode::Forward, Epilogue::ReluPool, (gemm.0, gemm.1, p));
    if key.tile == Tile::Narrow {
        // 16 columns cannot hold an 8×8 window: the 32-row tile of 128 columns instead.
        key = key.tile(Tile::M32);
        (bm, bn) = Tile::M32.shape();
    }
    let groups = grid(op, (bm, bn), gemm.0, gemm.1, p)?;
    g.note_flops((gemm.0 * p, gemm.1, gemm.2));
    let binds = ConvPool {
        params: Res { id: pid, buffer: &pbuf },
        a: w.res(),
        b: x.res(),
        bias: b.res(),
        y: y.res(),
        argmax: argmax.res(),
    };
    g.dispatch(key, binds, groups, &y.label)
}

/// `dx = ∂/∂x`, and 0 wherever `mask` (the ReLU output that fed this conv, shaped like dx) is not > 0.
pub fn backward_input(
    g: &mut GpuBackend,
    dy: &GpuTensor,
    w: &GpuTensor,
    mask: Option<&GpuTensor>,
    geom: ConvGeom,
    dx: &mut GpuTensor,
) -> Result<()> {
    let op = if mask.is_some() { "conv2d_backward_input_relu" } else { "conv2d_backward_input" };
    let d = dims(op, dx, w, geom)?;
    check(op, "dy", &dy.shape, &d.out_shape())?;
    if let Some(m) = mask {
        check(op, "mask", &m.shape, &dx.shape)?;
    }
    let p = dx.members;
    let ms = Strides::single(
        mstride(op, "w", w, p, Role::Own)?,
        mstride(op, "dy", dy, p, Role::Input)?,
        mask.map_or(Ok(0), |m| mstride(op, "mask", m, p, Role::Input))?,
        mstride(op, "dx", dx, p, Role::Own)?,
    );
    let gemm = (d.c, d.n * d.h * d.w, d.k * d.ks * d.ks);
    let (pid, pbuf) = g.uniform(&d.params(op, geom, gemm, gemm.2, ms)?);
    let epilogue = if mask.is_some() { Epilogue::Mask } else { Epilogue::None };
    let (key, bm, bn) = kernel(g, Mode::BackwardInput, epilogue, (gemm.0, gemm.1, p));
    let groups = grid(op, (bm, bn), gemm.0, gemm.1, p)?;
    let params = Res { id: pid, buffer: &pbuf };
    // The mask, or (unread without one) any buffer.
    let epilogue = mask.map_or(w.res(), |m| m.res());
    g.note_flops((gemm.0 * p, gemm.1, gemm.2));
    g.dispatch(key, Gemm { params, a: w.res(), b: dy.res(), epilogue, out: dx.res() }, groups, &dx.label)
}

/// `dw = ∂/∂w`, `db = ∂/∂b`. When dw and db are views of one gradient set (every layer with a trained bias)
/// one dispatch writes both through a binding that spans them (`Epilogue::BiasGrad`: K extra workgroups sum
/// db in `bias_grad`'s order, so it is bit for bit the separate reduction's); a `bias: false` layer's scratch db
/// takes `bias_grad` itself.
pub fn backward_weight(
    g: &mut GpuBackend,
    x: &GpuTensor,
    dy: &GpuTensor,
    geom: ConvGeom,
    dw: &mut GpuTensor,
    db: &mut GpuTensor,
) -> Result<()> {
    let op = "conv2d_backward_weight";
    let d = dims(op, x, dw, geom)?;
    check(op, "db", &db.shape, &[d.k])?;
    check(op, "dy", &dy.shape, &d.out_shape())?;
    let (gm, gn, gk) = (d.k, d.c * d.ks * d.ks, d.n * d.ho * d.wo);
    // One member's split: the partials' order of summation must not depend on the member count.
    let (s, chunk) = splits(gm, gn, gk);
    let members = dw.members;
    let dw_ms = mstride(op, "dw", dw, members, Role::Own)?;
    mstride(op, "db", db, members, Role::Own)?;
    let span = g.pair_span(dw, db);
    // A split's partial: [m·n dw | m db] when the bias is folded in.
    let part = gm * gn + if span.is_some() { gm } else { 0 };
    let (out_at, bias_at) = match span {
        Some((_, w_at, b_at)) if s == 1 => (w_at, b_at),
        _ => (0, u(op, gm * gn)?),
    };
    let ms = Strides {
        splits: s,
        a: mstride(op, "dy", dy, members, Role::Input)?,
        b: mstride(op, "x", x, members, Role::Input)?,
        e: 0,
        out: if s == 1 { dw_ms } else { u(op, s * part)? },
        out_at,
        bias_at,
        part,
    };
    let (pid, pbuf) = g.uniform(&d.params(op, geom, (gm, gn, gk), if s == 1 { gk } else { chunk }, ms)?);
    let p = Res { id: pid, buffer: &pbuf };
    let epilogue = if span.is_some() { Epilogue::BiasGrad } else { Epilogue::None };
    let (key, bm, bn) = kernel(g, Mode::BackwardWeight, epilogue, (gm, gn, members * s));
    // No epilogue operand: unread.
    let binds = |out| Gemm { params: p, a: dy.res(), b: x.res(), epilogue: x.res(), out };
    // The bias workgroups: ⌈gm / splits⌉ more in x (conv2d.wgsl `bias_sums`).
    let extra = if span.is_some() { u(op, gm.div_ceil(s))? } else { 0 };
    let with_bias = |[x, y, z]: [u32; 3]| -> Result<[u32; 3]> { Ok([x + extra, y, z]) };
    // Where the sums go: the span of dw and db, or dw alone.
    let out = span.map_or(dw.res(), |(id, ..)| Res { id, buffer: &dw.buffer });
    g.note_flops((gm * members, gn, gk));
    if s == 1 {
        g.dispatch(key, binds(out), with_bias(grid(op, (bm, bn), gm, gn, members)?)?, &dw.label)?;
    } else {
        let (sid, sbuf) = g.scratch((members * s * part * 4) as u64)?;
        let parts = Res { id: sid, buffer: &sbuf };
        g.dispatch(key, binds(parts), with_bias(grid(op, (bm, bn), gm, gn, members * s)?)?, &dw.label)?;
        let (head_at, tail) = match span {
            Some((_, w_at, b_at)) => (w_at, Some((u(op, gm * gn)?, b_at))),
            None => (0, None),
        };
        let rs = ReduceStrides { members, epilogue: 0, out: dw_ms, head_at, tail };
        reduce_splits(g, parts, super::Fused::None, out, part, gn, s, rs, &dw.label)?;
    }
    if span.is_none() {
        super::elementwise::bias_grad(g, op, dy, (d.n, d.k, d.ho * d.wo), db)?;
    }
    Ok(())
}
