//! Argument checks of the CPU ops: lengths, shapes of convs, linears and pools, labels, batch rows. Each
//! returns [`Error::Shape`] naming the op, never panics, so a bad call is refused before any value is written.

use super::{conv, pool};
use crate::backend::{ConvGeom, PoolChain, PoolGeom, numel};
use crate::{Error, Result};

pub(super) fn expect_len(op: &'static str, what: &str, len: usize, want: usize) -> Result<()> {
    if len == want { Ok(()) } else { Err(Error::shape(op, format!("{what} has {len} elements, expected {want}"))) }
}

pub(super) fn expect_shape(op: &'static str, what: &str, got: &[usize], want: &[usize]) -> Result<()> {
    if got == want { Ok(()) } else { Err(Error::shape(op, format!("{what} has shape {got:?}, expected {want:?}"))) }
}

fn dims4(op: &'static str, what: &str, s: &[usize]) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(s).map_err(|_| Error::shape(op, format!("{what} must be 4-d [N,C,H,W], got {s:?}")))
}

/// Validate conv shapes: x [N,C,H,W], w [K,C,k,k], y [N,K,Ho,Wo] with Ho, Wo from `geom`.
/// The output shape [N, K, Ho, Wo] of a conv of input `x` with weight `w`.
pub(super) fn conv_out(op: &'static str, x: &[usize], w: &[usize], geom: ConvGeom) -> Result<[usize; 4]> {
    let [n, c, h, wd] = dims4(op, "input", x)?;
    let [k, wc, kh, kw] = dims4(op, "weight", w)?;
    if wc != c || kh != kw {
        return Err(Error::shape(op, format!("weight {w:?} is not [K, {c}, k, k] for input {x:?}")));
    }
    let (Some(ho), Some(wo)) = (geom.out_size(h, kh), geom.out_size(wd, kw)) else {
        return Err(Error::shape(op, format!("a {kh}×{kw} kernel with {geom:?} does not fit input {x:?}")));
    };
    Ok([n, k, ho, wo])
}

pub(super) fn conv_dims(
    op: &'static str,
    x: &[usize],
    w: &[usize],
    geom: ConvGeom,
    y: &[usize],
) -> Result<conv::ConvDims> {
    let want = conv_out(op, x, w, geom)?;
    if y != want {
        return Err(Error::shape(op, format!("output has shape {y:?}, expected {want:?}")));
    }
    let [n, c, h, wd] = dims4(op, "input", x)?;
    Ok(conv::ConvDims { n, c, h, w: wd, k: want[1], ks: w[2], stride: geom.stride, pad: geom.padding })
}

/// The pooled shape [N, K, Hp, Wp] of a conv output `conv` [N, K, Ho, Wo] under `pools`.
pub(super) fn pooled_shape(op: &'static str, conv: [usize; 4], pools: PoolChain) -> Result<[usize; 4]> {
    pools.check(op)?;
    let [n, k, ho, wo] = conv;
    let (Some(hp), Some(wp)) = (pools.out_size(ho), pools.out_size(wo)) else {
        return Err(Error::shape(op, format!("{pools:?} does not fit the conv output {conv:?}")));
    };
    Ok([n, k, hp, wp])
}

/// Validate linear shapes: x [N, ...I], w [O, I], y [N, O].
pub(super) fn linear_dims(op: &'static str, x: &[usize], w: &[usize], y: &[usize]) -> Result<(usize, usize, usize)> {
    let (&[o, i], Some(&n)) = (w, x.first()) else {
        return Err(Error::shape(op, format!("weight must be 2-d [O,I] and input non-empty, got {w:?} and {x:?}")));
    };
    if numel(x) != n * i || y != [n, o] {
        return Err(Error::shape(
            op,
            format!("input {x:?}, weight {w:?}, output {y:?} do not form [N,I]·[O,I]ᵀ = [N,O]"),
        ));
    }
    Ok((n, i, o))
}

/// Validate pooling shapes: x [N,C,H,W], y [N,C,Ho,Wo] with Ho, Wo from `geom`; returns (planes, dims).
pub(super) fn pool_dims(op: &'static str, x: &[usize], geom: PoolGeom, y: &[usize]) -> Result<(usize, pool::PoolDims)> {
    let [n, c, h, w] = dims4(op, "input", x)?;
    let (Some(ho), Some(wo)) = (geom.out_size(h), geom.out_size(w)) else {
        return Err(Error::shape(op, format!("{geom:?} does not fit input {x:?}")));
    };
    if y != [n, c, ho, wo] {
        return Err(Error::shape(op, format!("output {y:?} is not {:?} for input {x:?}", [n, c, ho, wo])));
    }
    Ok((n * c, pool::PoolDims { h, w, kernel: geom.kernel, stride: geom.stride }))
}

/// The dataset rows of the batch `order[offset ..][.. b]`, each checked to be below `m` (all checked first, so
/// a bad entry writes nothing).
pub(super) fn batch_rows<'a>(
    op: &'static str,
    order: &'a [u32],
    offset: usize,
    b: usize,
    m: usize,
) -> Result<impl Iterator<Item = usize> + 'a> {
    let rows = order.get(offset..offset + b).ok_or_else(|| {
        Error::shape(op, format!("order has {} entries, batch needs [{offset}, {})", order.len(), offset + b))
    })?;
    if let Some(&r) = rows.iter().find(|&&r| r as usize >= m) {
        return Err(Error::shape(op, format!("order entry {r} is not below {m} images")));
    }
    Ok(rows.iter().map(|&r| r as usize))
}

pub(super) fn check_labels(op: &'static str, labels: &[u32], n: usize, classes: usize) -> Result<()> {
    expect_len(op, "labels", labels.len(), n)?;
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(i) => Err(Error::shape(op, format!("label {} at row {i} is not below {classes} classes", labels[i]))),
        None => Ok(()),
    }
}
