//! The member axis on the CPU ([`crate::backend`]'s rule): an op runs once per member on slices of the
//! stacked data — a loop is the obvious formulation, which is what the reference is for (the GPU makes the
//! member a workgroup dimension instead). A tensor with one member read as an input is shared by every member.

use super::CpuTensor;
use crate::backend::numel;
use crate::{Error, Result};

/// The op's member count P: that of its first output. Every output and parameter must have P members, every
/// input 1 (shared) or P.
pub(super) fn count(
    op: &'static str,
    outputs: &[(&str, &CpuTensor)],
    params: &[(&str, &CpuTensor)],
    inputs: &[(&str, &CpuTensor)],
) -> Result<usize> {
    let p = outputs.first().map_or(1, |(_, t)| t.members);
    for (what, t) in outputs.iter().chain(params) {
        if t.members != p {
            return Err(Error::shape(op, format!("{what} has {} members, the op's output has {p}", t.members)));
        }
    }
    for (what, t) in inputs {
        if t.members != 1 && t.members != p {
            return Err(Error::shape(
                op,
                format!("input {what} has {} members; an input has 1 (shared) or the output's {p}", t.members),
            ));
        }
    }
    Ok(p)
}

/// Member m's values of `t` (all of them when `t` has one member: a shared input).
pub(super) fn part(t: &CpuTensor, m: usize) -> &[f32] {
    if t.members == 1 {
        return &t.data;
    }
    let n = numel(&t.shape);
    &t.data[m * n..][..n]
}

/// Member m's values of `t`, to write.
pub(super) fn part_mut(t: &mut CpuTensor, m: usize) -> &mut [f32] {
    if t.members == 1 {
        return &mut t.data;
    }
    let n = numel(&t.shape);
    &mut t.data[m * n..][..n]
}
