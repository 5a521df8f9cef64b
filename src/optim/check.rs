//! Argument checks shared by both backends' multi-tensor ops, so the CPU reference and the GPU refuse exactly
//! the same calls (a GPU kernel cannot report a bad index; it would read or write the wrong memory).

use bytemuck::Pod;

use super::hyper::{ClipParams, MAX_GROUPS, SgdHyper};
use crate::backend::{Backend, numel};
use crate::{Error, Result};

/// The hyper-parameter block `bytes` as a `T`, refusing a uniform of another size.
pub(crate) fn read_hyper<T: Pod>(op: &'static str, bytes: &[u8]) -> Result<T> {
    let want = std::mem::size_of::<T>();
    if bytes.len() != want {
        let name = std::any::type_name::<T>().rsplit("::").next().unwrap_or("hyper");
        return Err(Error::shape(op, format!("the uniform holds {} bytes, a {name} needs {want}", bytes.len())));
    }
    Ok(bytemuck::pod_read_unaligned(bytes))
}

/// The P hyper-parameter blocks of a population's update (member m's at m·size_of::<T>()), refusing a uniform
/// of another size. P = 1 is [`read_hyper`].
pub(crate) fn read_hypers<T: Pod>(op: &'static str, bytes: &[u8], members: usize) -> Result<Vec<T>> {
    let size = std::mem::size_of::<T>();
    if bytes.len() != members * size {
        let name = std::any::type_name::<T>().rsplit("::").next().unwrap_or("hyper");
        return Err(Error::shape(
            op,
            format!(
                "the uniform holds {} bytes, {members} member(s)' {name} blocks need {}",
                bytes.len(),
                members * size
            ),
        ));
    }
    Ok(bytes.chunks_exact(size).map(bytemuck::pod_read_unaligned).collect())
}

/// One state set of an update (momentum buffers, Adam moments) next to the parameters; `optional` sets may be
/// empty (the caller decides whether the hyper-parameters allow that).
pub(crate) struct StateSet<'a, T> {
    pub name: &'static str,
    pub tensors: &'a [T],
    pub optional: bool,
}

/// Checks every update op makes: grads and each state set match the parameters tensor by tensor (same shapes:
/// packed sets of one layout), one group index below [`MAX_GROUPS`] per parameter, and the norm slot inside
/// `norms` when clipping by norm.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_update<B: Backend>(
    b: &B,
    op: &'static str,
    params: &[B::Tensor],
    grads: &[B::Tensor],
    states: &[StateSet<'_, B::Tensor>],
    groups: &[u32],
    clip: &ClipParams,
    norms: &B::Tensor,
) -> Result<()> {
    let n = params.len();
    let mut sets = vec![("grads", grads)];
    for s in states {
        if !(s.optional && s.tensors.is_empty()) {
            sets.push((s.name, s.tensors));
        }
    }
    for (name, set) in sets {
        if set.len() != n {
            return Err(Error::shape(op, format!("{n} parameters but {} {name}", set.len())));
        }
        for (t, (p, x)) in params.iter().zip(set).enumerate() {
            // Gradients are the update's input: one shared set is read by every member.
            let shared_input = name == "grads" && b.members(x) == 1;
            if b.members(p) != b.members(x) && !shared_input {
                return Err(Error::shape(
                    op,
                    format!("parameter {t} has {} members but its {name} entry {}", b.members(p), b.members(x)),
                ));
            }
            if b.shape(p) != b.shape(x) {
                return Err(Error::shape(
                    op,
                    format!("parameter {t} has shape {:?} but its {name} entry {:?}", b.shape(p), b.shape(x)),
                ));
            }
        }
    }
    if groups.len() != n {
        return Err(Error::shape(op, format!("{n} parameters but {} group indices", groups.len())));
    }
    if let Some((t, g)) = groups.iter().enumerate().find(|(_, g)| **g as usize >= MAX_GROUPS) {
        return Err(Error::shape(op, format!("parameter {t} is in group {g}, at most {MAX_GROUPS} groups exist")));
    }
    let members = params.first().map_or(1, |p| b.members(p));
    if let Some((t, p)) = params.iter().enumerate().find(|(_, p)| b.members(p) != members) {
        return Err(Error::shape(op, format!("parameter {t} has {} members, parameter 0 {members}", b.members(p))));
    }
    if clip.use_norm != 0 && b.members(norms) != members && b.members(norms) != 1 {
        return Err(Error::shape(op, format!("the norms have {} members, the parameters {members}", b.members(norms))));
    }
    let slots = numel(b.shape(norms));
    if clip.use_norm != 0 && clip.norm_slot as usize >= slots {
        return Err(Error::shape(op, format!("norm slot {} outside the {slots}-entry norm buffer", clip.norm_slot)));
    }
    Ok(())
}

/// SGD may run without momentum buffers only when no group the parameters use has momentum.
pub(crate) fn check_sgd_buffers(op: &'static str, h: &SgdHyper, groups: &[u32], bufs: usize) -> Result<()> {
    if bufs == 0
        && let Some(&g) = groups.iter().find(|&&g| h.group[g as usize].momentum != 0.0)
    {
        return Err(Error::shape(op, format!("group {g} has momentum but no momentum buffers were given")));
    }
    Ok(())
}

/// A uniform is a positive multiple of 16 bytes (uniform-buffer bindings and arrays of structs in them are).
pub(crate) fn check_uniform_size(label: &str, bytes: usize) -> Result<()> {
    if bytes == 0 || !bytes.is_multiple_of(16) {
        return Err(Error::shape("uniform", format!("`{label}`: {bytes} bytes is not a positive multiple of 16")));
    }
    Ok(())
}
