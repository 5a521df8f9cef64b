//! The bind layout of every kernel family, by name: one struct per layout whose fields are the buffers a
//! launcher passes, each with its `@binding` number and kind declared once, here. A launcher fills the fields
//! (`Gemm { params, a, b, epilogue, out }`), never a positional list, so no slot changes meaning with the call;
//! the explicit bind-group layout of a pipeline is built from the same declaration
//! ([`KernelKey::layout`](super::kernels::KernelKey::layout)), and `tests/naga_shaders.rs` checks every slot
//! against the WGSL declaration (number and kind).

use super::buffer::Res;
use super::kernels::{Bind, Layout, Slot};

/// A filled bind layout: the buffers to bind, in the order of its [`Layout`].
pub(crate) trait Bindings<'a> {
    const LAYOUT: Layout;
    fn resources(&self) -> Vec<Res<'a>>;
}

/// `layout! { Name { field: binding Kind, … } }`: the struct, its `LAYOUT` and its [`Bindings`] impl.
macro_rules! layout {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident: $binding:literal $kind:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy)]
        pub(crate) struct $name<'a> {
            $($(#[$fm])* pub $field: Res<'a>,)*
        }

        impl<'a> Bindings<'a> for $name<'a> {
            const LAYOUT: Layout =
                &[$(Slot { name: stringify!($field), binding: $binding, kind: Bind::$kind }),*];
            fn resources(&self) -> Vec<Res<'a>> {
                vec![$(self.$field),*]
            }
        }
    };
}

/// The [`Layout`] of a bindings struct.
pub(crate) const fn layout_of<'a, B: Bindings<'a>>() -> Layout {
    B::LAYOUT
}

layout! {
    /// gather.wgsl `gather_batch`: rows `order[cursor.offset..][..batch]` of the resident dataset.
    Gather {
        params: 0 Uniform,
        cursor: 1 Uniform,
        images: 2 Read,
        labels: 3 Read,
        order: 4 Read,
        x: 5 ReadWrite,
        y: 6 ReadWrite,
    }
}

layout! {
    /// gather.wgsl `gather_pixels`: the same rows from a dataset of bytes (four per u32) through a 256-entry table.
    GatherPixels {
        params: 0 Uniform,
        cursor: 1 Uniform,
        labels: 3 Read,
        order: 4 Read,
        x: 5 ReadWrite,
        y: 6 ReadWrite,
        pixels: 7 Read,
        table: 8 Read,
    }
}

layout! {
    /// conv2d.wgsl `conv2d_pool`: conv + bias + ReLU + a chain of max-pools, the pooled output and its argmax.
    ConvPool {
        params: 0 Uniform,
        a: 1 Read,
        b: 2 Read,
        bias: 3 Read,
        y: 4 ReadWrite,
        argmax: 5 ReadWrite,
    }
}

layout! {
    /// pool.wgsl `pool_chain_backward`: dx of the conv output from dy at the pooled output, through argmax.
    PoolChainBackward {
        params: 0 Uniform,
        dy: 3 Read,
        dx: 4 ReadWrite,
        pooled: 5 Read,
        argmax: 6 Read,
    }
}

layout! {
    /// matmul.wgsl `matmul` and conv2d.wgsl `conv2d`: `out = epilogue(a ⊗ b)` (or split-K partials).
    Gemm {
        params: 0 Uniform,
        a: 1 Read,
        b: 2 Read,
        /// The epilogue's operand: the bias (`Bias`, `BiasRelu`), or the mask (`Mask`: the ReLU output that fed
        /// the layer). Unread by the other variants, which bind any buffer here.
        epilogue: 3 Read,
        out: 4 ReadWrite,
    }
}

layout! {
    /// matmul.wgsl `reduce_splits`: `out = epilogue(Σ_z parts[z])`, the second half of a split-K product.
    Reduce {
        params: 5 Uniform,
        parts: 6 Read,
        /// As in [`Gemm`]: bias or mask, unread without an epilogue.
        epilogue: 3 Read,
        out: 4 ReadWrite,
    }
}

layout! {
    /// pool.wgsl `max_pool2d`.
    PoolForward { params: 0 Uniform, x: 1 Read, y: 2 ReadWrite }
}

layout! {
    /// pool.wgsl `max_pool2d_backward` (x is the pool's input; with `Mask`, also the ReLU output it masks by).
    PoolBackward { params: 0 Uniform, x: 1 Read, dy: 3 Read, dx: 4 ReadWrite }
}

layout! {
    /// elementwise.wgsl `relu`.
    ReluForward { params: 0 Uniform, x: 1 Read, y: 2 ReadWrite }
}

layout! {
    /// elementwise.wgsl `relu_backward` (y is the ReLU's output).
    ReluBackward { params: 0 Uniform, y: 1 Read, dy: 3 Read, dx: 2 ReadWrite }
}

layout! {
    /// elementwise.wgsl `bias_grad`.
    BiasGrad { params: 4 Uniform, dy: 1 Read, db: 2 ReadWrite }
}

layout! {
    /// softmax_xent.wgsl `softmax_xent`: dlogits and the batch's mean loss into `losses[cursor.loss_slot]`.
    SoftmaxXent {
        params: 0 Uniform,
        cursor: 1 Uniform,
        logits: 2 Read,
        labels: 3 Read,
        dlogits: 4 ReadWrite,
        losses: 5 ReadWrite,
    }
}

layout! {
    /// head.wgsl `head_forward`: per block of rows, the logits, the loss terms, dlogits and dx (masked by x when
    /// the variant is `Mask`).
    HeadForward {
        params: 0 Uniform,
        x: 1 Read,
        w: 2 Read,
        bias: 3 Read,
        labels: 4 Read,
        logits: 5 ReadWrite,
        dlogits: 6 ReadWrite,
        row_loss: 7 ReadWrite,
        dx: 8 ReadWrite,
    }
}

layout! {
    /// head.wgsl `head_weights`: dw and db (one span of the gradient set) and the batch loss.
    HeadWeights {
        params: 0 Uniform,
        x: 1 Read,
        cursor: 9 Uniform,
        dlogits: 10 Read,
        row_loss: 11 Read,
        dwb: 12 ReadWrite,
        losses: 13 ReadWrite,
    }
}

layout! {
    /// softmax_xent.wgsl `eval_accumulate`: loss sum and correct count added into `acc`.
    EvalAccumulate { params: 0 Uniform, logits: 2 Read, labels: 3 Read, acc: 6 ReadWrite }
}

layout! {
    /// grad_norm.wgsl `grad_norm_partials`: sums of squares per workgroup over a whole packed buffer.
    NormPartials { params: 0 Uniform, grads: 1 Read, partials: 2 ReadWrite }
}

layout! {
    /// grad_norm.wgsl `grad_norm_finish`: `norms[cursor.norm_slot] = sqrt(Σ partials)`.
    NormFinish { params: 0 Uniform, cursor: 3 Uniform, partials: 4 Read, norms: 5 ReadWrite }
}

layout! {
    /// sgd.wgsl `sgd_update`: every tensor of a packed set; `momentum` is the placeholder without momentum.
    /// `members`: the member strides (a `MemberParams`), `hyper`: one block per member.
    Sgd {
        members: 6 Uniform,
        hyper: 0 Uniform,
        segments: 1 Read,
        norms: 2 Read,
        param: 3 ReadWrite,
        grad: 4 Read,
        momentum: 5 ReadWrite,
    }
}

layout! {
    /// adam.wgsl `adam_update`: every tensor of a packed set; `max_exp_avg_sq` is the placeholder without
    /// amsgrad. `members` and `hyper` as in [`Sgd`].
    Adam {
        members: 8 Uniform,
        hyper: 0 Uniform,
        segments: 1 Read,
        norms: 2 Read,
        param: 3 ReadWrite,
        grad: 4 Read,
        exp_avg: 5 ReadWrite,
        exp_avg_sq: 6 ReadWrite,
        max_exp_avg_sq: 7 ReadWrite,
    }
}
