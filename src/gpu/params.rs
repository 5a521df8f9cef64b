//! `#[repr(C)]` uniform structs, each mirrored field for field (same names, same order) by a WGSL struct.
//! `tests/naga_layout.rs` checks sizes and member offsets through naga's reflection, so a field added on one
//! side only fails a test instead of silently shifting every later field.
//!
//! All are multiples of 16 bytes (explicit `_pad` fields) because uniform-buffer bindings are validated
//! against the WGSL struct size and some backends round uniform structs up to 16.
//!
//! Member axis: fields ending in `_ms` are member strides in elements (member m's copy of that operand starts
//! at m·stride; 0 for a shared one-member input), the member itself comes from a workgroup dimension.

use bytemuck::{Pod, Zeroable};

pub use crate::optim::hyper::{AdamGroup, AdamHyper, ClipParams, SgdGroup, SgdHyper};

/// matmul.wgsl `matmul`: C[M,N] = op(A)·op(B); workgroup z = member·splits + split reduces k in
/// [split·k_chunk, (split+1)·k_chunk) of that member's operands; its output starts at member·c_ms + split·M·N.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct GemmParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub k_chunk: u32,
    pub splits: u32,
    pub a_ms: u32,
    pub b_ms: u32,
    pub e_ms: u32,
    pub c_ms: u32,
    /// Where the product starts in `c` (dw's place in a dw+db span; 0 otherwise).
    pub c_at: u32,
    /// `BIAS_GRAD`: where db starts in `c` (split partials: m·n, after the slice's dw).
    pub bias_at: u32,
    /// Elements of one split's partial slice: m·n, plus m with `BIAS_GRAD`.
    pub part: u32,
}

/// matmul.wgsl `reduce_splits`: for member m and i < len,
/// c[m·out_ms + head_at + i] = epilogue(Σ_z parts[(m·splits + z)·len + i]), m < members (the elements from
/// `tail` on go to `tail_at` instead: the bias part of a dw+db partial).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct ReduceParams {
    pub len: u32,
    pub n: u32,
    pub splits: u32,
    pub members: u32,
    pub e_ms: u32,
    pub out_ms: u32,
    /// Where element i < `tail` goes: out[m·out_ms + head_at + i] …
    pub head_at: u32,
    /// … and element i ≥ `tail` (the bias part of a dw+db partial): out[m·out_ms + tail_at + i − tail].
    /// `tail` = `len` when there is no such part.
    pub tail: u32,
    pub tail_at: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// conv2d.wgsl: the conv's shape and geometry (kernel edge `ks`, stride, zero padding) plus the implicit
/// GEMM's m, n, k, split chunk and split count (workgroup z = member·splits + split), and the member strides
/// of A, B, the epilogue operand and the output (for split partials, splits·m·n).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct ConvParams {
    pub batch: u32,
    pub cin: u32,
    pub h: u32,
    pub w: u32,
    pub cout: u32,
    pub ho: u32,
    pub wo: u32,
    pub ks: u32,
    pub stride: u32,
    pub pad: u32,
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub k_chunk: u32,
    pub splits: u32,
    pub a_ms: u32,
    pub b_ms: u32,
    pub e_ms: u32,
    pub out_ms: u32,
    /// Where the product starts in `out` (dw's place in a dw+db span; 0 otherwise).
    pub out_at: u32,
    /// `BIAS_GRAD`: where db starts in `out` (split partials: m·n).
    pub bias_at: u32,
    /// Elements of one split's partial slice: m·n, plus m with `BIAS_GRAD`.
    pub part: u32,
    /// `conv2d_pool`: the pools' kernels, the pooled size, and argmax's member stride.
    pub inner: u32,
    pub outer: u32,
    pub hp: u32,
    pub wp: u32,
    pub arg_ms: u32,
    pub _pad0: u32,
}

/// pool.wgsl: planes = N·C, window `kernel`×`kernel` every `stride`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct PoolParams {
    pub planes: u32,
    pub h: u32,
    pub w: u32,
    pub ho: u32,
    pub wo: u32,
    pub kernel: u32,
    pub stride: u32,
    pub _pad0: u32,
}

/// elementwise.wgsl: number of elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct ElemParams {
    pub len: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// elementwise.wgsl `bias_grad`: dst[m·dst_ms + k] = Σ_{n,s} src[m·src_ms + (n·channels + k)·inner + s],
/// member m = workgroup z.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct BiasGradParams {
    pub batch: u32,
    pub channels: u32,
    pub inner: u32,
    pub src_ms: u32,
    pub dst_ms: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// softmax_xent.wgsl: n rows of l logits per member (member = workgroup z); `out_ms` is the member stride of
/// `losses` (softmax_xent) or `acc` (eval_accumulate).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct XentParams {
    pub n: u32,
    pub l: u32,
    pub logits_ms: u32,
    pub dlogits_ms: u32,
    pub out_ms: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// head.wgsl: the classifier head's sizes (n rows, l classes, i in-features), whether dx is wanted, every
/// operand's member stride, and where dw and db start in the span that holds both.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct HeadParams {
    pub n: u32,
    pub l: u32,
    pub i: u32,
    pub has_dx: u32,
    pub x_ms: u32,
    pub w_ms: u32,
    pub b_ms: u32,
    pub logits_ms: u32,
    pub dlogits_ms: u32,
    pub rows_ms: u32,
    pub dx_ms: u32,
    pub out_ms: u32,
    pub dwb_ms: u32,
    pub w_at: u32,
    pub b_at: u32,
    pub _pad0: u32,
}

/// gather.wgsl: `batch` rows of `dim` values from a dataset of `rows` images through `order`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct GatherParams {
    pub batch: u32,
    pub dim: u32,
    pub rows: u32,
    pub order_len: u32,
}

/// gather.wgsl, softmax_xent.wgsl, grad_norm.wgsl: the backend's cursor, op arguments that change every step
/// (see `gpu::cursor`). One field per argument, so writing one never disturbs an op that reads another.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Cursor {
    pub batch_offset: u32,
    pub loss_slot: u32,
    pub norm_slot: u32,
    pub _pad0: u32,
}

/// grad_norm.wgsl: `len` f32 values of one member's packed set (member m's at m·grads_ms), reduced by
/// `partials` workgroups per member; member m's norm goes to norms[m·norms_ms + cursor.norm_slot].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct NormParams {
    pub len: u32,
    pub partials: u32,
    pub grads_ms: u32,
    pub norms_ms: u32,
}

/// sgd.wgsl, adam.wgsl: member strides (workgroup z = member) of the parameter and state sets (`set_ms`, the
/// set size S), of the gradients (S, or 0 when one gradient set is shared) and of the norms the clip reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct MemberParams {
    pub set_ms: u32,
    pub grad_ms: u32,
    pub norms_ms: u32,
    pub _pad0: u32,
}

/// sgd.wgsl, adam.wgsl (a storage array, one per tensor of a packed set): tensor t is elements
/// `[offset, offset + len)` of the pack, in parameter group `group`, updated by workgroups
/// `[first_wg, first_wg + ⌈len / 256⌉)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Segment {
    pub offset: u32,
    pub len: u32,
    pub group: u32,
    pub first_wg: u32,
}

/// A Rust struct's layout as the WGSL side must reproduce it: name, size, and (field, offset) pairs.
#[derive(Clone, Debug)]
pub struct Layout {
    pub name: &'static str,
    pub size: usize,
    pub fields: Vec<(&'static str, usize)>,
}

macro_rules! layout {
    ($t:ident { $($f:ident),* $(,)? }) => {
        Layout {
            name: stringify!($t),
            size: std::mem::size_of::<$t>(),
            fields: vec![$((stringify!($f), std::mem::offset_of!($t, $f))),*],
        }
    };
}

/// Every parameter struct the shaders declare (uniforms and the segment table), for the layout test.
pub fn layouts() -> Vec<Layout> {
    vec![
        layout!(Cursor { batch_offset, loss_slot, norm_slot, _pad0 }),
        layout!(NormParams { len, partials, grads_ms, norms_ms }),
        layout!(MemberParams { set_ms, grad_ms, norms_ms, _pad0 }),
        layout!(Segment { offset, len, group, first_wg }),
        layout!(ClipParams { max_norm, value, use_norm, use_value, norm_slot, _pad0, _pad1, _pad2 }),
        layout!(SgdGroup { lr, momentum, dampening, weight_decay, nesterov, init_momentum, _pad0, _pad1 }),
        layout!(SgdHyper { clip, frozen, _pad0, _pad1, _pad2, group }),
        layout!(AdamGroup {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            step_size,
            bias_correction2_sqrt,
            decay_factor,
            one_minus_beta1,
            one_minus_beta2,
            _pad0,
            _pad1
        }),
        layout!(AdamHyper { clip, amsgrad, decoupled, frozen, _pad0, group }),
        layout!(GemmParams { m, n, k, k_chunk, splits, a_ms, b_ms, e_ms, c_ms, c_at, bias_at, part }),
        layout!(ReduceParams { len, n, splits, members, e_ms, out_ms, head_at, tail, tail_at, _pad0, _pad1, _pad2 }),
        layout!(ConvParams {
            batch,
            cin,
            h,
            w,
            cout,
            ho,
            wo,
            ks,
            stride,
            pad,
            m,
            n,
            k,
            k_chunk,
            splits,
            a_ms,
            b_ms,
            e_ms,
            out_ms,
            out_at,
            bias_at,
            part,
            inner,
            outer,
            hp,
            wp,
            arg_ms,
            _pad0
        }),
        layout!(PoolParams { planes, h, w, ho, wo, kernel, stride, _pad0 }),
        layout!(ElemParams { len, _pad0, _pad1, _pad2 }),
        layout!(BiasGradParams { batch, channels, inner, src_ms, dst_ms, _pad0, _pad1, _pad2 }),
        layout!(XentParams { n, l, logits_ms, dlogits_ms, out_ms, _pad0, _pad1, _pad2 }),
        layout!(GatherParams { batch, dim, rows, order_len }),
        layout!(HeadParams {
            n,
            l,
            i,
            has_dx,
            x_ms,
            w_ms,
            b_ms,
            logits_ms,
            dlogits_ms,
            rows_ms,
            dx_ms,
            out_ms,
            dwb_ms,
            w_at,
            b_at,
            _pad0
        }),
    ]
}
