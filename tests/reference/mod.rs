//! A layer-list model trained on plain slices, generic over the float type, straight from the CPU reference
//! ops (`wgtrain::cpu::{conv, pool, dense, loss}`) and PyTorch's single-tensor Adam: the float64 twin of a
//! `wgtrain train` run, to hold against PyTorch's float64 log. In f64 every rounding is ~1e-16, so a formula or
//! an index that differs from PyTorch's shows up as a difference many orders above that, while summation order
//! alone cannot. `fused` runs a conv + ReLU + whole-window pool as the model does (`conv2d_relu_pool`'s
//! generic pieces); otherwise every layer is its own unfused op, as PyTorch runs it.
#![allow(dead_code)]

use wgtrain::backend::PoolChain;
use wgtrain::cpu::conv::{self, ConvDims};
use wgtrain::cpu::pool::{self, PoolDims};
use wgtrain::cpu::real::Real;
use wgtrain::cpu::{dense, loss};
use wgtrain::nn::spec::{Architecture, Layer};

/// What the runner needs of a float beyond [`Real`]: constants from f64 (PyTorch's Python scalars are
/// doubles, rounded to the tensor's type where they meet it) and a correctly rounded square root.
pub trait Float: Real {
    fn of(x: f64) -> Self;
    fn sqrt(self) -> Self;
}
impl Float for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}
impl Float for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

/// One step's record, as PyTorch logs it: the loss before the update and the global gradient norm.
#[derive(Clone, Copy, Debug)]
pub struct StepLog {
    pub loss: f64,
    pub grad_norm: f64,
}

/// Adam's hyper-parameters (PyTorch's defaults unless the case says otherwise).
#[derive(Clone, Copy, Debug)]
pub struct AdamCfg {
    pub betas: (f64, f64),
    pub eps: f64,
}

fn conv_dims(n: usize, input: &[usize], w: &[usize], geom: wgtrain::backend::ConvGeom) -> ConvDims {
    ConvDims { n, c: input[0], h: input[1], w: input[2], k: w[0], ks: w[2], stride: geom.stride, pad: geom.padding }
}

/// The model's ops: layer i reads `acts[i]` and writes `acts[i + 1]`; a fused conv + ReLU + pool covers
/// several layers and keeps its argmax.
enum Op {
    Layer(usize),
    ConvPool { conv: usize, pools: PoolChain, last: usize },
}

fn ops(arch: &Architecture, fused: bool) -> Vec<Op> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < arch.layers.len() {
        let whole = |j: usize| match arch.layers.get(j) {
            Some(Layer::Pool { geom }) if geom.kernel == geom.stride => Some(geom.kernel),
            _ => None,
        };
        if fused
            && matches!(arch.layers[i], Layer::Conv { .. })
            && matches!(arch.layers.get(i + 1), Some(Layer::Relu))
            && let Some(inner) = whole(i + 2)
            && [2, 4, 8].contains(&inner)
        {
            out.push(Op::ConvPool { conv: i, pools: PoolChain { inner, outer: 1 }, last: i + 2 });
            i += 3;
        } else {
            out.push(Op::Layer(i));
            i += 1;
        }
    }
    out
}

/// Loss and every parameter's gradient for one batch (x [n, input], labels [n]).
pub fn loss_and_grads<T: Float>(
    arch: &Architecture,
    params: &[Vec<T>],
    x: &[T],
    labels: &[u32],
    fused: bool,
) -> (T, Vec<Vec<T>>) {
    let n = labels.len();
    let shape_in = |i: usize| if i == 0 { arch.input.clone() } else { arch.shapes[i - 1].clone() };
    let numel = |s: &[usize]| s.iter().product::<usize>();
    let zeros = |len: usize| vec![T::ZERO; len];
    let ops = ops(arch, fused);
    // acts[i] = input of layer i (acts[layers] = logits); argmax per fused op.
    let mut acts: Vec<Vec<T>> = vec![x.to_vec()];
    acts.resize(arch.layers.len() + 1, Vec::new());
    let mut argmax: Vec<Vec<T>> = vec![Vec::new(); arch.layers.len()];
    let bias_or_zero = |b: Option<usize>, len: usize| b.map(|t| params[t].clone()).unwrap_or_else(|| zeros(len));
    for op in &ops {
        match *op {
            Op::ConvPool { conv, pools, last } => {
                let Layer::Conv { geom, weight, bias } = arch.layers[conv] else { unreachable!() };
                let ws = &arch.params[weight].shape;
                let d = conv_dims(n, &shape_in(conv), ws, geom);
                let mut y = zeros(n * numel(&arch.shapes[conv]));
                conv::forward_act(&d, &acts[conv], &params[weight], &bias_or_zero(bias, ws[0]), &mut y, true);
                let (ho, wo) = (d.ho(), d.wo());
                let len = n * numel(&arch.shapes[last]);
                let (mut p, mut a) = (zeros(len), zeros(len));
                pool::chain_forward(n * ws[0], (ho, wo), pools, &y, &mut p, &mut a);
                acts[last + 1] = p;
                argmax[last] = a;
            }
            Op::Layer(i) => {
                let input = &acts[i];
                let out = match arch.layers[i] {
                    Layer::Conv { geom, weight, bias } => {
                        let ws = &arch.params[weight].shape;
                        let d = conv_dims(n, &shape_in(i), ws, geom);
                        let mut y = zeros(n * numel(&arch.shapes[i]));
                        conv::forward(&d, input, &params[weight], &bias_or_zero(bias, ws[0]), &mut y);
                        y
                    }
                    Layer::Relu => {
                        let mut y = zeros(input.len());
                        dense::relu(input, &mut y);
                        y
                    }
                    Layer::Pool { geom } => {
                        let s = shape_in(i);
                        let d = PoolDims { h: s[1], w: s[2], kernel: geom.kernel, stride: geom.stride };
                        let mut y = zeros(n * numel(&arch.shapes[i]));
                        pool::forward(n * s[0], &d, input, &mut y);
                        y
                    }
                    Layer::Flatten => input.clone(),
                    Layer::Linear { weight, bias } => {
                        let (o, f) = (arch.params[weight].shape[0], arch.params[weight].shape[1]);
                        let mut y = zeros(n * o);
                        dense::linear(n, f, o, input, &params[weight], &bias_or_zero(bias, o), &mut y);
                        y
                    }
                };
                acts[i + 1] = out;
            }
        }
    }
    let classes = arch.classes;
    let mut dy = zeros(n * classes);
    let loss = loss::softmax_xent(n, classes, &acts[arch.layers.len()], labels, &mut dy);
    let mut grads: Vec<Vec<T>> = arch.params.iter().map(|p| zeros(numel(&p.shape))).collect();
    let scratch_bias = |b: Option<usize>, grads: &mut Vec<Vec<T>>, len: usize| match b {
        Some(t) => std::mem::take(&mut grads[t]),
        None => zeros(len),
    };
    for op in ops.iter().rev() {
        match *op {
            Op::ConvPool { conv, pools, last } => {
                let Layer::Conv { geom, weight, bias } = arch.layers[conv] else { unreachable!() };
                let ws = arch.params[weight].shape.clone();
                let d = conv_dims(n, &shape_in(conv), &ws, geom);
                let mut dconv = zeros(n * numel(&arch.shapes[conv]));
                let ins = (&acts[last + 1][..], &argmax[last][..], &dy[..]);
                pool::chain_backward(n * ws[0], (d.ho(), d.wo()), pools, ins, &mut dconv);
                let mut db = scratch_bias(bias, &mut grads, ws[0]);
                conv::backward_weight(&d, &acts[conv], &dconv, &mut grads[weight], &mut db);
                if let Some(t) = bias {
                    grads[t] = db;
                }
                let mut dx = zeros(acts[conv].len());
                if conv > 0 {
                    conv::backward_input(&d, &dconv, &params[weight], &mut dx);
                }
                dy = dx;
            }
            Op::Layer(i) => {
                let input = &acts[i];
                let mut dx = zeros(input.len());
                match arch.layers[i] {
                    Layer::Conv { geom, weight, bias } => {
                        let ws = arch.params[weight].shape.clone();
                        let d = conv_dims(n, &shape_in(i), &ws, geom);
                        let mut db = scratch_bias(bias, &mut grads, ws[0]);
                        conv::backward_weight(&d, input, &dy, &mut grads[weight], &mut db);
                        if let Some(t) = bias {
                            grads[t] = db;
                        }
                        if i > 0 {
                            conv::backward_input(&d, &dy, &params[weight], &mut dx);
                        }
                    }
                    Layer::Relu => dense::relu_backward(&acts[i + 1], &dy, &mut dx),
                    Layer::Pool { geom } => {
                        let s = shape_in(i);
                        let d = PoolDims { h: s[1], w: s[2], kernel: geom.kernel, stride: geom.stride };
                        pool::backward(n * s[0], &d, input, &dy, &mut dx);
                    }
                    Layer::Flatten => dx.copy_from_slice(&dy),
                    Layer::Linear { weight, bias } => {
                        let (o, f) = (arch.params[weight].shape[0], arch.params[weight].shape[1]);
                        let mut db = scratch_bias(bias, &mut grads, o);
                        dense::linear_backward_weight(n, f, o, input, &dy, &mut grads[weight], &mut db);
                        if let Some(t) = bias {
                            grads[t] = db;
                        }
                        dense::linear_backward_input(n, f, o, &dy, &params[weight], &mut dx);
                    }
                }
                dy = dx;
            }
        }
    }
    (loss, grads)
}

/// Adam's state for every parameter.
pub struct Adam<T> {
    pub step: u32,
    pub exp_avg: Vec<Vec<T>>,
    pub exp_avg_sq: Vec<Vec<T>>,
}

impl<T: Float> Adam<T> {
    pub fn new(params: &[Vec<T>]) -> Self {
        let z = || params.iter().map(|p| vec![T::ZERO; p.len()]).collect();
        Adam { step: 0, exp_avg: z(), exp_avg_sq: z() }
    }

    /// `torch.optim.Adam`'s `_single_tensor_adam` (no weight decay, no amsgrad), with its Python-double
    /// scalars rounded to T where they meet a tensor:
    /// `exp_avg.lerp_(g, 1 − β1)`, `exp_avg_sq.mul_(β2).addcmul_(g, g, value=1 − β2)`,
    /// `denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)`, `param.addcdiv_(exp_avg, denom, value=−lr/bc1)`.
    pub fn step(&mut self, cfg: AdamCfg, lr: f64, params: &mut [Vec<T>], grads: &[Vec<T>]) {
        self.step += 1;
        let (b1, b2) = cfg.betas;
        let t = f64::from(self.step);
        let (bc1, bc2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
        let step_size = T::of(-(lr / bc1));
        let bc2_sqrt = T::of(bc2.sqrt());
        let (w1, beta2, w2, eps) = (T::of(1.0 - b1), T::of(b2), T::of(1.0 - b2), T::of(cfg.eps));
        let half = T::of(0.5);
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let (m, v) = (&mut self.exp_avg[k], &mut self.exp_avg_sq[k]);
            for i in 0..p.len() {
                // torch.lerp: exact at both ends, the formula depends on the side of 0.5.
                let (start, end) = (m[i], g[i]);
                m[i] = if w1 < half { start + w1 * (end - start) } else { end - (end - start) * (T::ONE - w1) };
                v[i] = v[i] * beta2 + w2 * g[i] * g[i];
                let denom = v[i].sqrt() / bc2_sqrt + eps;
                p[i] += step_size * m[i] / denom; // addcdiv: param + (value·exp_avg)/denom
            }
        }
    }
}

/// `sqrt(Σ g²)` over every gradient, accumulated in f64 (what the goldens log).
pub fn grad_norm<T: Float>(grads: &[Vec<T>]) -> f64 {
    grads.iter().flatten().map(|&g| g.to_f64() * g.to_f64()).sum::<f64>().sqrt()
}
