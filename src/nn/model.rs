//! A model built from an [`Architecture`]: its parameters and their gradients (packed sets, in parameter order,
//! with PyTorch `state_dict` names), and the forward and backward passes over a batch, generic over the backend.
//! It holds no optimizer state.
//!
//! Fusion is decided from the layer list: a conv or linear followed by a ReLU runs as one op (`conv2d_relu`,
//! `linear_relu`) and keeps no pre-activation tensor; backward, the op that reads such a ReLU output masks its
//! input gradient with it (`conv2d_backward_input_relu`, `linear_backward_input_relu`,
//! `max_pool2d_backward_relu`), which yields the gradient at the fused layer's pre-activation directly. A
//! flatten is a reinterpretation, not an op. The sample CNN thus records exactly the ops it did by hand.

use crate::Result;
use crate::backend::{Backend, ConvGeom, Head, PoolGeom};
use crate::nn::spec::{Architecture, Layer};

/// One forward op, reading activation i and writing activation i + 1 (0 is the batch).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Node {
    Conv { geom: ConvGeom, weight: usize, bias: Bias, relu: bool },
    Linear { weight: usize, bias: Bias, relu: bool },
    Pool { geom: PoolGeom },
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
        let mut layers = arch.layers.iter().enumerate().peekable();
        while let Some((i, layer)) = layers.next() {
            let next_is_relu = matches!(layers.peek(), Some((_, Layer::Relu)));
            let masks_input = steps
                .last()
                .is_some_and(|s| matches!(s.node, Node::Conv { relu: true, .. } | Node::Linear { relu: true, .. }));
            let node = match layer {
                // A reinterpretation of the same activation: the next op reads it as [N, C·H·W].
                Layer::Flatten => continue,
                Layer::Relu => Node::Relu,
                Layer::Pool { geom } => Node::Pool { geom: *geom },
                Layer::Conv { geom, weight, bias } => {
                    let bias = match bias {
                        Some(t) => Bias::Param(*t),
                        None => fixed(b, arch.params[*weight].shape[0])?,
                    };
                    Node::Conv { geom: *geom, weight: *weight, bias, relu: next_is_relu }
                }
                Layer::Linear { weight, bias } => {
                    let bias = match bias {
                        Some(t) => Bias::Param(*t),
                        None => fixed(b, arch.params[*weight].shape[0])?,
                    };
                    Node::Linear { weight: *weight, bias, relu: next_is_relu }
                }
            };
            let fused = matches!(node, Node::Conv { relu: true, .. } | Node::Linear { relu: true, .. });
            if fused {
                layers.next(); // the ReLU runs inside this op
            }
            // A ReLU keeps its input's shape (also when that input is a flattened view of a 4-d activation).
            if node != Node::Relu {
                shape = arch.shapes[i].clone();
            }
            let label = match node {
                Node::Conv { weight, .. } | Node::Linear { weight, .. } => {
                    arch.params[weight].name.trim_end_matches(".weight").to_string()
                }
                Node::Pool { .. } => format!("pool{i}"),
                Node::Relu => format!("relu{i}"),
            };
            steps.push(Step { node, masks_input, out_shape: shape.clone(), label });
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
        let labels = b.indices(&vec![0; batch], "batch.y")?;
        Ok(Activations { batch, acts, labels, grads, dlogits })
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
            match s.node {
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
                Node::Pool { .. } | Node::Relu => {}
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
