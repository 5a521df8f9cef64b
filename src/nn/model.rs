//! A model built from an [`Architecture`]: its parameters and their gradients (packed sets, in parameter order,
//! with PyTorch `state_dict` names), and the forward and backward passes over a batch, generic over the backend.
//! It holds no optimizer state.
//!
//! Fusion is decided from the layer list: a conv or linear followed by a ReLU runs as one op (`conv2d_relu`,
//! `linear_relu`) and keeps no pre-activation tensor; backward, the op that reads such a ReLU output masks its
//! input gradient with it (`conv2d_backward_input_relu`, `linear_backward_input_relu`,
//! `max_pool2d_backward_relu`), which yields the gradient at the fused layer's pre-activation directly. A
//! flatten is a reinterpretation, not an op. A conv + ReLU followed by one or two max-pools whose kernel equals
//! their stride (windows of edge 2, 4 or 8 together) runs as one op that writes only the pooled output and where
//! each maximum came from (`conv2d_relu_pool`); its backward routes the gradient back through that
//! (`conv2d_relu_pool_backward`) into a tensor shaped like the conv output, which the conv's backward reads.
//! A last linear layer without a ReLU runs together with the loss (`linear_softmax_xent`, see
//! [`Model::train_pass`]).

use crate::Result;
use crate::backend::{Backend, ConvGeom, Head, PoolChain, PoolGeom};
use crate::nn::spec::{Architecture, Layer};

/// One forward op, reading activation i and writing activation i + 1 (0 is the batch).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Node {
    Conv {
        geom: ConvGeom,
        weight: usize,
        bias: Bias,
        relu: bool,
    },
    /// Conv + ReLU + max-pools: writes the pooled output (and the argmax it keeps in `Activations`).
    ConvPool {
        geom: ConvGeom,
        weight: usize,
        bias: Bias,
        pools: PoolChain,
    },
    Linear {
        weight: usize,
        bias: Bias,
        relu: bool,
    },
    Pool {
        geom: PoolGeom,
    },
    Relu,
}

/// Where a layer's bias lives: a trained parameter, or (`bias: false`) a zero tensor of the model's own that no
/// optimizer sees, whose gradient goes to a scratch tensor and is dropped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bias {
    Param(usize),
    Fixed(usize),
}

#[derive(Clone, Debug)]
struct Step {
    node: Node,
    /// Whether this node's input is the output of a fused layer+ReLU, so its backward masks the input gradient.
    masks_input: bool,
    /// Activation shape (per example) of the output.
    out_shape: Vec<usize>,
    /// `ConvPool`: the shape (per example) of the conv output, which only its gradient takes.
    conv_shape: Option<Vec<usize>>,
    /// Name of the output tensor: the layer's own (`conv2`, `fc1`) or its kind and index (`pool4`).
    label: String,
}

/// Parameters and gradients on the backend, and the op sequence of the architecture. With a member axis
/// (`members` > 1, a population) every parameter, gradient and activation holds one copy per member, and each
/// op the model records runs for every member at once; the batch and the fixed zero biases are shared.
pub struct Model<B: Backend> {
    pub arch: Architecture,
    pub members: usize,
    pub params: Vec<B::Tensor>,
    pub grads: Vec<B::Tensor>,
    steps: Vec<Step>,
    /// Zero biases of `bias: false` layers and the scratch their gradients go to.
    fixed_bias: Vec<B::Tensor>,
    fixed_bias_grad: Vec<B::Tensor>,
}

/// Activations for one batch size: `acts[0]` is the batch, `acts[i + 1]` the output of op i; for training,
/// `grads[i + 1]` is the gradient flowing into op i's output (at the pre-activation of a fused ReLU layer).
pub struct Activations<B: Backend> {
    pub batch: usize,
    pub acts: Vec<B::Tensor>,
    pub labels: B::Indices,
    grads: Option<Vec<B::Tensor>>,
    pub dlogits: Option<B::Tensor>,
    /// Per op: what a fused conv-ReLU-pool keeps besides its output; None for the other ops.
    pooled: Vec<Option<Pooled<B>>>,
}

/// A fused conv-ReLU-pool's own tensors: where each pooled value came from, and (training) the gradient at its
/// conv's pre-activation.
struct Pooled<B: Backend> {
    argmax: B::Tensor,
    dconv: Option<B::Tensor>,
}

impl<B: Backend> Activations<B> {
    pub fn x(&mut self) -> &mut B::Tensor {
        &mut self.acts[0]
    }
    pub fn logits(&self) -> &B::Tensor {
        self.acts.last().expect("at least the batch")
    }
}

impl<B: Backend> Model<B> {
    /// Upload `weights` (parameter order) and zero the gradients.
    pub fn new(b: &mut B, arch: &Architecture, weights: &[Vec<f32>]) -> Result<Self> {
        Self::with_members(b, arch, weights, 1)
    }

    /// A model with a member axis: `members` copies of the parameters, each starting from `weights`.
    pub fn with_members(b: &mut B, arch: &Architecture, weights: &[Vec<f32>], members: usize) -> Result<Self> {
        let shapes: Vec<Vec<usize>> = arch.params.iter().map(|p| p.shape.clone()).collect();
        let names: Vec<String> = arch.params.iter().map(|p| p.name.clone()).collect();
        let grad_names: Vec<String> = names.iter().map(|n| format!("{n}.grad")).collect();
        let mut params = b.zeros_packed_members(members, &shapes, &names)?;
        for (t, w) in params.iter_mut().zip(weights) {
            b.write(t, &w.repeat(members))?;
        }
        let grads = b.zeros_packed_members(members, &shapes, &grad_names)?;

        let (mut fixed_bias, mut fixed_bias_grad) = (Vec::new(), Vec::new());
        let mut fixed = |b: &mut B, width: usize| -> Result<Bias> {
            // The zero bias is read by every member; its gradient is each member's own scratch.
            fixed_bias.push(b.zeros(&[width], "fixed.bias")?);
            fixed_bias_grad.push(b.zeros_members(members, &[width], "fixed.bias.grad")?);
            Ok(Bias::Fixed(fixed_bias.len() - 1))
        };
        let mut steps: Vec<Step> = Vec::new();
        let mut shape = arch.input.clone();
        let layers = &arch.layers;
        let mut i = 0;
        while i < layers.len() {
            let next_is_relu = matches!(layers.get(i + 1), Some(Layer::Relu));
            let masks_input = steps
                .last()
                .is_some_and(|s| matches!(s.node, Node::Conv { relu: true, .. } | Node::Linear { relu: true, .. }));
            let mut bias_of = |b: &mut B, weight: usize, bias: Option<usize>| match bias {
                Some(t) => Ok(Bias::Param(t)),
                None => fixed(b, arch.params[weight].shape[0]),
            };
            let (node, used) = match &layers[i] {
                // A reinterpretation of the same activation: the next op reads it as [N, C·H·W].
                Layer::Flatten => {
                    i += 1;
                    continue;
                }
                Layer::Relu => (Node::Relu, 1),
                Layer::Pool { geom } => (Node::Pool { geom: *geom }, 1),
                Layer::Conv { geom, weight, bias } => {
                    let bias = bias_of(b, *weight, *bias)?;
                    match pool_chain(&layers[i + 1..]) {
                        Some((pools, n)) if next_is_relu => {
                            (Node::ConvPool { geom: *geom, weight: *weight, bias, pools }, 2 + n)
                        }
                        // The ReLU runs inside the conv.
                        _ => (
                            Node::Conv { geom: *geom, weight: *weight, bias, relu: next_is_relu },
                            1 + usize::from(next_is_relu),
                        ),
                    }
                }
                Layer::Linear { weight, bias } => {
                    let bias = bias_of(b, *weight, *bias)?;
                    (Node::Linear { weight: *weight, bias, relu: next_is_relu }, 1 + usize::from(next_is_relu))
                }
            };
            let last = i + used - 1;
            // A ReLU keeps its input's shape (also when that input is a flattened view of a 4-d activation).
            if node != Node::Relu {
                shape = arch.shapes[last].clone();
            }
            let label = match node {
                Node::Conv { weight, .. } | Node::Linear { weight, .. } => {
                    arch.params[weight].name.trim_end_matches(".weight").to_string()
                }
                Node::Pool { .. } | Node::ConvPool { .. } => format!("pool{last}"),
                Node::Relu => format!("relu{i}"),
            };
            let conv_shape = matches!(node, Node::ConvPool { .. }).then(|| arch.shapes[i].clone());
            steps.push(Step { node, masks_input, out_shape: shape.clone(), conv_shape, label });
            i += used;
        }
        Ok(Model { arch: arch.clone(), members, params, grads, steps, fixed_bias, fixed_bias_grad })
    }

    /// Activations for `batch` examples (per member); `train` adds the gradient buffers. The batch `acts[0]` is
    /// one tensor every member reads.
    pub fn activations(&self, b: &mut B, batch: usize, train: bool) -> Result<Activations<B>> {
        let with_batch = |s: &[usize]| -> Vec<usize> { std::iter::once(batch).chain(s.iter().copied()).collect() };
        let p = self.members;
        let mut acts = vec![b.zeros(&with_batch(&self.arch.input), "batch.x")?];
        for s in &self.steps {
            acts.push(b.zeros_members(p, &with_batch(&s.out_shape), &s.label)?);
        }
        let grads = if train {
            let mut g = Vec::with_capacity(self.steps.len());
            // grads[0] would be the gradient at the batch, which nothing needs: a 1-element placeholder.
            g.push(b.zeros(&[1], "d.unused")?);
            for s in self.steps.iter().take(self.steps.len() - 1) {
                g.push(b.zeros_members(p, &with_batch(&s.out_shape), &format!("d.{}", s.label))?);
            }
            Some(g)
        } else {
            None
        };
        let dlogits = train.then(|| b.zeros_members(p, &[batch, self.arch.classes], "d.logits")).transpose()?;
        let mut pooled = Vec::with_capacity(self.steps.len());
        for s in &self.steps {
            let Some(conv_shape) = &s.conv_shape else {
                pooled.push(None);
                continue;
            };
            let argmax = b.zeros_members(p, &with_batch(&s.out_shape), &format!("{}.argmax", s.label))?;
            let conv = match s.node {
                Node::ConvPool { weight, .. } => self.arch.params[weight].name.trim_end_matches(".weight").to_string(),
                _ => s.label.clone(),
            };
            let dconv = train.then(|| b.zeros_members(p, &with_batch(conv_shape), &format!("d.{conv}"))).transpose()?;
            pooled.push(Some(Pooled { argmax, dconv }));
        }
        let labels = b.indices(&vec![0; batch], "batch.y")?;
        Ok(Activations { batch, acts, labels, grads, dlogits, pooled })
    }

    /// Logits for the batch already in `a.acts[0]`.
    pub fn forward(&self, b: &mut B, a: &mut Activations<B>) -> Result<()> {
        self.forward_first(b, a, self.steps.len())
    }

    /// The bias tensor a layer reads.
    fn bias(&self, bias: Bias) -> &B::Tensor {
        match bias {
            Bias::Param(t) => &self.params[t],
            Bias::Fixed(k) => &self.fixed_bias[k],
        }
    }

    /// One training pass over the batch already in `a.acts[0]`: forward, the mean softmax cross-entropy
    /// (its value to `losses[slot]`), and every parameter's gradient. A last linear layer (no ReLU after it)
    /// runs together with the loss as one op, [`Backend::linear_softmax_xent`]: what the data flow is
    /// (forward → loss → backward) does not change, only how many dispatches it takes.
    pub fn train_pass(&mut self, b: &mut B, a: &mut Activations<B>, losses: &mut B::Tensor, slot: usize) -> Result<()> {
        let n = self.steps.len();
        let not_training = || crate::Error::Usage("activations were allocated for evaluation only".into());
        let head = match self.steps.last() {
            Some(Step { node: Node::Linear { weight, bias, relu: false }, masks_input, .. }) => {
                Some((*weight, *bias, *masks_input))
            }
            _ => None,
        };
        let Some((weight, bias, relu_input)) = head else {
            self.forward(b, a)?;
            let dlogits = a.dlogits.as_mut().ok_or_else(not_training)?;
            b.softmax_xent(a.acts.last().expect("logits"), &a.labels, dlogits, losses, slot)?;
            return self.backward_first(b, a, n);
        };
        self.forward_first(b, a, n - 1)?;
        let grads = a.grads.as_mut().ok_or_else(not_training)?;
        let (ins, outs) = a.acts.split_at_mut(n);
        let [dw, db] = weight_and_bias_grads(&mut self.grads, &mut self.fixed_bias_grad, weight, bias);
        let b_tensor = match bias {
            Bias::Param(t) => &self.params[t],
            Bias::Fixed(k) => &self.fixed_bias[k],
        };
        let head = Head {
            x: &ins[n - 1],
            w: &self.params[weight],
            b: b_tensor,
            labels: &a.labels,
            relu_input,
            logits: &mut outs[0],
            dlogits: a.dlogits.as_mut().ok_or_else(not_training)?,
            losses,
            slot,
            dw,
            db,
            dx: (n > 1).then(|| &mut grads[n - 1]),
        };
        b.linear_softmax_xent(head)?;
        self.backward_first(b, a, n - 1)
    }

    /// The first `count` ops of the forward pass.
    fn forward_first(&self, b: &mut B, a: &mut Activations<B>, count: usize) -> Result<()> {
        let p = &self.params;
        let bias = |c: Bias| self.bias(c);
        for (i, s) in self.steps.iter().enumerate().take(count) {
            let (ins, outs) = a.acts.split_at_mut(i + 1);
            let (x, y) = (&ins[i], &mut outs[0]);
            match s.node {
                Node::Conv { geom, weight, bias: c, relu: true } => b.conv2d_relu(x, &p[weight], bias(c), geom, y)?,
                Node::Conv { geom, weight, bias: c, relu: false } => b.conv2d(x, &p[weight], bias(c), geom, y)?,
                Node::ConvPool { geom, weight, bias: c, pools } => {
                    let pooled = a.pooled[i].as_mut().expect("activations hold every fused pool's argmax");
                    b.conv2d_relu_pool(x, &p[weight], bias(c), geom, pools, y, &mut pooled.argmax)?
                }
                Node::Linear { weight, bias: c, relu: true } => b.linear_relu(x, &p[weight], bias(c), y)?,
                Node::Linear { weight, bias: c, relu: false } => b.linear(x, &p[weight], bias(c), y)?,
                Node::Pool { geom } => b.max_pool2d(x, geom, y)?,
                Node::Relu => b.relu(x, y)?,
            }
        }
        Ok(())
    }

    /// Every parameter's gradient of the mean loss, from `a.dlogits` (written by the loss).
    pub fn backward(&mut self, b: &mut B, a: &mut Activations<B>) -> Result<()> {
        self.backward_first(b, a, self.steps.len())
    }

    /// The backward of the first `count` ops, last first; op i reads the gradient at its output from
    /// `grads[i + 1]`, or from `a.dlogits` when it is the model's last op.
    fn backward_first(&mut self, b: &mut B, a: &mut Activations<B>, count: usize) -> Result<()> {
        let not_training = || crate::Error::Usage("activations were allocated for evaluation only".into());
        let grads = a.grads.as_mut().ok_or_else(not_training)?;
        let dlogits = a.dlogits.as_ref().ok_or_else(not_training)?;
        let p = &self.params;
        for (i, s) in self.steps.iter().enumerate().take(count).rev() {
            // dy: the gradient at this op's output; dx: at its input (not needed for the first op).
            let (lower, upper) = grads.split_at_mut(i + 1);
            let dy = if i + 1 == self.steps.len() { dlogits } else { &upper[0] };
            let dx = &mut lower[i];
            let first = i == 0;
            let x = &a.acts[i];
            // A fused conv-ReLU-pool first takes the gradient back through its pools and ReLU, to the conv's
            // pre-activation; from there on it is a conv.
            let (node, dy) = match s.node {
                Node::ConvPool { geom, weight, bias, pools } => {
                    let Some(Pooled { argmax, dconv: Some(dconv) }) = a.pooled[i].as_mut() else {
                        return Err(not_training());
                    };
                    b.conv2d_relu_pool_backward(&a.acts[i + 1], argmax, dy, pools, dconv)?;
                    (Node::Conv { geom, weight, bias, relu: true }, &*dconv)
                }
                node => (node, dy),
            };
            match node {
                Node::Conv { geom, weight, bias, .. } => {
                    let [dw, db] = weight_and_bias_grads(&mut self.grads, &mut self.fixed_bias_grad, weight, bias);
                    b.conv2d_backward_weight(x, dy, geom, dw, db)?;
                    if !first && s.masks_input {
                        b.conv2d_backward_input_relu(dy, &p[weight], x, geom, dx)?;
                    } else if !first {
                        b.conv2d_backward_input(dy, &p[weight], geom, dx)?;
                    }
                }
                Node::Linear { weight, bias, .. } => {
                    let [dw, db] = weight_and_bias_grads(&mut self.grads, &mut self.fixed_bias_grad, weight, bias);
                    b.linear_backward_weight(x, dy, dw, db)?;
                    if !first && s.masks_input {
                        b.linear_backward_input_relu(dy, &p[weight], x, dx)?;
                    } else if !first {
                        b.linear_backward_input(dy, &p[weight], dx)?;
                    }
                }
                Node::Pool { geom } if !first && s.masks_input => b.max_pool2d_backward_relu(x, dy, geom, dx)?,
                Node::Pool { geom } if !first => b.max_pool2d_backward(x, dy, geom, dx)?,
                Node::Relu if !first => b.relu_backward(&a.acts[i + 1], dy, dx)?,
                Node::Pool { .. } | Node::Relu | Node::ConvPool { .. } => {}
            }
        }
        Ok(())
    }

    /// Number of ops the forward pass records.
    pub fn forward_ops(&self) -> usize {
        self.steps.len()
    }

    /// Parameter names in order.
    pub fn names(&self) -> Vec<String> {
        self.arch.params.iter().map(|p| p.name.clone()).collect()
    }

    /// Parameter shapes in order.
    pub fn shapes(&self) -> Vec<Vec<usize>> {
        self.arch.params.iter().map(|p| p.shape.clone()).collect()
    }

    /// Copy every parameter back to the host, in parameter order (with a member axis, each tensor's members
    /// back to back).
    pub fn read_weights(&self, b: &mut B) -> Result<Vec<Vec<f32>>> {
        self.params.iter().map(|t| b.read(t)).collect()
    }

    /// Every member's parameters (`[member][parameter]`), read back in bulk.
    pub fn read_member_weights(&self, b: &mut B) -> Result<Vec<Vec<Vec<f32>>>> {
        let all = b.read_set(&self.params)?;
        let member = |t: &Vec<f32>, m: usize| {
            let n = t.len() / self.members;
            t[m * n..][..n].to_vec()
        };
        Ok((0..self.members).map(|m| all.iter().map(|t| member(t, m)).collect()).collect())
    }
}

/// The gradient tensors a layer's backward-weight op writes: its weight's, and its bias's (or the scratch of a
/// fixed zero bias).
fn weight_and_bias_grads<'a, T>(grads: &'a mut [T], scratch: &'a mut [T], weight: usize, bias: Bias) -> [&'a mut T; 2] {
    match bias {
        Bias::Param(t) => grads.get_disjoint_mut([weight, t]).expect("weight and bias are distinct parameters"),
        Bias::Fixed(k) => [&mut grads[weight], &mut scratch[k]],
    }
}

/// The max-pools at the start of `layers` (after a conv's ReLU) that [`Backend::conv2d_relu_pool`] takes: one or
/// two with kernel = stride, windows of edge 2, 4 or 8 together; and how many layers they are.
fn pool_chain(layers: &[Layer]) -> Option<(PoolChain, usize)> {
    let whole = |l: Option<&Layer>| match l {
        Some(Layer::Pool { geom }) if geom.kernel == geom.stride => Some(geom.kernel),
        _ => None,
    };
    let inner = whole(layers.get(1))?;
    let one = (PoolChain { inner, outer: 1 }, 1);
    let both = whole(layers.get(2)).map(|outer| (PoolChain { inner, outer }, 2));
    // Both pools where their windows fit the op, else the first alone.
    both.into_iter().chain([one]).find(|(pools, _)| pools.check("model").is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;
    use crate::nn::spec::ModelSpec;

    /// The ops a layer list runs as: "conv+relu", "conv+relu+pool(2×2)", "linear", …
    fn ops(layers: &str) -> Vec<String> {
        let spec = ModelSpec::from_json(&format!("{{\"layers\": {layers}}}")).unwrap();
        let arch = Architecture::new(&spec, [1, 28, 28], 10).unwrap();
        let weights = crate::nn::init::pytorch_default(&arch.param_shapes(), 0);
        let model = Model::new(&mut CpuBackend::new(), &arch, &weights).unwrap();
        let relu = |r: bool| if r { "+relu" } else { "" };
        model
            .steps
            .iter()
            .map(|s| match s.node {
                Node::Conv { relu: r, .. } => format!("conv{}", relu(r)),
                Node::ConvPool { pools, .. } => format!("conv+relu+pool({}×{})", pools.inner, pools.outer),
                Node::Linear { relu: r, .. } => format!("linear{}", relu(r)),
                Node::Pool { geom } => format!("pool({},{})", geom.kernel, geom.stride),
                Node::Relu => "relu".into(),
            })
            .collect()
    }

    #[test]
    fn conv_relu_and_whole_window_pools_run_as_one_op() {
        let conv = r#"{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}"#;
        let pool = |k: usize, s: usize| format!(r#"{{"type": "max_pool2d", "kernel_size": {k}, "stride": {s}}}"#);
        let tail = r#"{"type": "flatten"}, {"type": "linear", "out_features": 10}"#;
        let relu = r#"{"type": "relu"}"#;
        let list = |mid: &[String]| format!("[{conv}, {}, {tail}]", mid.join(", "));
        // The sample CNN: conv2's ReLU and both pools in one op.
        let sample = crate::nn::sample_cnn();
        let weights = crate::nn::init::pytorch_default(&sample.param_shapes(), 0);
        let model = Model::new(&mut CpuBackend::new(), &sample, &weights).unwrap();
        let kinds: Vec<_> = model.steps.iter().map(|s| s.node).collect();
        assert!(matches!(kinds[1], Node::ConvPool { pools: PoolChain { inner: 2, outer: 2 }, .. }), "{kinds:?}");
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert_eq!(ops(&list(&[relu.into(), pool(2, 2)])), ["conv+relu+pool(2×1)", "linear"]);
        assert_eq!(ops(&list(&[relu.into(), pool(2, 2), pool(4, 4)])), ["conv+relu+pool(2×4)", "linear"]);
        // Overlapping windows, an edge of 3, or no ReLU between: not fused.
        assert_eq!(ops(&list(&[relu.into(), pool(2, 1)])), ["conv+relu", "pool(2,1)", "linear"]);
        assert_eq!(ops(&list(&[relu.into(), pool(3, 3)])), ["conv+relu", "pool(3,3)", "linear"]);
        assert_eq!(ops(&list(&[pool(2, 2)])), ["conv", "pool(2,2)", "linear"]);
        // Two pools whose windows do not fit together (edge 6): the first alone.
        assert_eq!(ops(&list(&[relu.into(), pool(2, 2), pool(3, 3)])), ["conv+relu+pool(2×1)", "pool(3,3)", "linear"]);
    }
}
