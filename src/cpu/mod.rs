//! The CPU reference backend: plain Rust over slices, the living definition of every op in
//! [`crate::backend::Backend`]. The same generic functions run in f64 for the gradient checks.

pub mod adam;
mod checks;
pub mod clip;
pub mod conv;
pub mod dense;
pub mod fast;
mod gather;
pub mod gemm;
#[cfg(target_arch = "x86_64")]
mod gemm_avx2;
#[cfg(target_arch = "x86_64")]
mod gemm_avx512;
pub mod loss;
mod members;
mod memory;
mod optim;
pub mod pool;
pub mod real;
pub mod sgd;

use crate::backend::{Backend, ConvGeom, PoolChain, PoolGeom, numel};
use crate::{Error, Result};
use checks::{check_labels, conv_dims, conv_out, expect_len, expect_shape, linear_dims, pool_dims, pooled_shape};

/// A host tensor: values and shape; with a member axis, `members` copies of `shape` back to back in `data`.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuTensor {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
    pub members: usize,
}

/// Reference backend; ops run immediately when recorded.
pub struct CpuBackend {
    batch_chunks: usize,
    /// A conv output that lives only inside `conv2d_relu_pool`, kept for the next call.
    scratch: Vec<f32>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend { batch_chunks: conv::BATCH_CHUNKS, scratch: Vec::new() }
    }
}

impl CpuBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sum conv weight gradients over the batch in `chunks` (≥ 1) parts instead of [`conv::BATCH_CHUNKS`]:
    /// another valid float32 evaluation order, to measure how far rounding alone moves a training run.
    pub fn with_batch_chunks(chunks: usize) -> Result<Self> {
        if chunks == 0 {
            return Err(Error::Usage("the CPU backend needs at least one batch chunk".into()));
        }
        Ok(CpuBackend { batch_chunks: chunks, scratch: Vec::new() })
    }
}

/// `backward(dx)`, then dx = 0 wherever `mask` (a ReLU output shaped like dx) is not > 0.
fn masked(
    op: &'static str,
    mask: &CpuTensor,
    dx: &mut CpuTensor,
    backward: impl FnOnce(&mut CpuTensor) -> Result<()>,
) -> Result<()> {
    expect_shape(op, "mask", &mask.shape, &dx.shape)?;
    members::count(op, &[("dx", dx)], &[("mask", mask)], &[])?;
    backward(dx)?;
    dense::mask_in_place(&mask.data, &mut dx.data);
    Ok(())
}

impl CpuBackend {
    #[allow(clippy::too_many_arguments)]
    fn conv_forward(
        &mut self,
        op: &'static str,
        x: &CpuTensor,
        w: &CpuTensor,
        b: &CpuTensor,
        geom: ConvGeom,
        y: &mut CpuTensor,
        relu: bool,
    ) -> Result<()> {
        let d = conv_dims(op, &x.shape, &w.shape, geom, &y.shape)?;
        expect_len(op, "bias", numel(&b.shape), d.k)?;
        let p = members::count(op, &[("y", y)], &[("w", w)], &[("x", x), ("b", b)])?;
        for m in 0..p {
            let (x, w, b) = (members::part(x, m), members::part(w, m), members::part(b, m));
            if relu {
                conv::forward_act(&d, x, w, b, members::part_mut(y, m), true);
            } else {
                conv::forward(&d, x, w, b, members::part_mut(y, m));
            }
        }
        Ok(())
    }
}

/// `conv2d_backward_input`, masked by `mask` (a ReLU output shaped like dx) when given.
fn conv_backward_input(
    op: &'static str,
    dy: &CpuTensor,
    w: &CpuTensor,
    mask: Option<&CpuTensor>,
    geom: ConvGeom,
    dx: &mut CpuTensor,
) -> Result<()> {
    let d = conv_dims(op, &dx.shape, &w.shape, geom, &dy.shape)?;
    let mut params = vec![("dy", dy), ("w", w)];
    if let Some(mask) = mask {
        expect_shape(op, "mask", &mask.shape, &dx.shape)?;
        params.push(("mask", mask));
    }
    let p = members::count(op, &[("dx", dx)], &params, &[])?;
    for m in 0..p {
        let mask = mask.map(|t| members::part(t, m));
        conv::backward_input_masked(&d, members::part(dy, m), members::part(w, m), members::part_mut(dx, m), mask);
    }
    Ok(())
}

impl Backend for CpuBackend {
    type Tensor = CpuTensor;
    type Indices = Vec<u32>;
    type Uniform = Vec<u8>;

    fn name(&self) -> String {
        "cpu".into()
    }

    fn zeros(&mut self, shape: &[usize], label: &str) -> Result<CpuTensor> {
        self.zeros_members(1, shape, label)
    }

    fn zeros_members(&mut self, members: usize, shape: &[usize], label: &str) -> Result<CpuTensor> {
        crate::backend::check_members("zeros_members", label, members)?;
        let n = members.checked_mul(numel(shape)).ok_or_else(|| {
            Error::DeviceLimit(format!("tensor `{label}`: {members} members of shape {shape:?} do not fit in memory"))
        })?;
        let what = if members == 1 { "tensor".to_string() } else { format!("tensor of {members} members") };
        Ok(CpuTensor { data: memory::zeros(n, label, &what)?, shape: shape.to_vec(), members })
    }

    fn members(&self, t: &CpuTensor) -> usize {
        t.members
    }

    fn tensor(&mut self, data: &[f32], shape: &[usize], label: &str) -> Result<CpuTensor> {
        expect_len("tensor", label, data.len(), numel(shape))?;
        Ok(CpuTensor { data: data.to_vec(), shape: shape.to_vec(), members: 1 })
    }

    fn indices(&mut self, data: &[u32], _label: &str) -> Result<Vec<u32>> {
        Ok(data.to_vec())
    }

    fn write(&mut self, dst: &mut CpuTensor, data: &[f32]) -> Result<()> {
        expect_len("write", "data", data.len(), dst.data.len())?;
        dst.data.copy_from_slice(data);
        Ok(())
    }

    fn write_indices(&mut self, dst: &mut Vec<u32>, data: &[u32]) -> Result<()> {
        expect_len("write_indices", "data", data.len(), dst.len())?;
        dst.copy_from_slice(data);
        Ok(())
    }

    fn read(&mut self, src: &CpuTensor) -> Result<Vec<f32>> {
        Ok(src.data.clone())
    }

    fn shape<'a>(&self, t: &'a CpuTensor) -> &'a [usize] {
        &t.shape
    }

    // Packing is a GPU concern (one buffer, one dispatch); on the CPU a packed set is plain tensors.
    fn zeros_packed(&mut self, shapes: &[Vec<usize>], labels: &[String]) -> Result<Vec<CpuTensor>> {
        self.zeros_packed_members(1, shapes, labels)
    }

    fn zeros_packed_members(
        &mut self,
        members: usize,
        shapes: &[Vec<usize>],
        labels: &[String],
    ) -> Result<Vec<CpuTensor>> {
        expect_len("zeros_packed", "labels", labels.len(), shapes.len())?;
        shapes.iter().zip(labels).map(|(s, l)| self.zeros_members(members, s, l)).collect()
    }

    fn uniform(&mut self, bytes: usize, label: &str) -> Result<Vec<u8>> {
        crate::optim::check::check_uniform_size(label, bytes)?;
        Ok(vec![0; bytes])
    }

    fn write_uniform(&mut self, u: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
        expect_len("write_uniform", "bytes", bytes.len(), u.len())?;
        u.copy_from_slice(bytes);
        Ok(())
    }

    fn begin_step(&mut self) -> Result<()> {
        Ok(())
    }

    fn end_step(&mut self) -> Result<()> {
        Ok(())
    }

    fn gather_batch(
        &mut self,
        images: &CpuTensor,
        labels: &Vec<u32>,
        order: &Vec<u32>,
        offset: usize,
        x: &mut CpuTensor,
        y: &mut Vec<u32>,
    ) -> Result<()> {
        gather::gather_batch(images, labels, order, offset, x, y)
    }

    fn gather_pixels(
        &mut self,
        pixels: &Vec<u32>,
        table: &CpuTensor,
        labels: &Vec<u32>,
        order: &Vec<u32>,
        offset: usize,
        x: &mut CpuTensor,
        y: &mut Vec<u32>,
    ) -> Result<()> {
        gather::gather_pixels(pixels, table, labels, order, offset, x, y)
    }

    fn conv2d(&mut self, x: &CpuTensor, w: &CpuTensor, b: &CpuTensor, geom: ConvGeom, y: &mut CpuTensor) -> Result<()> {
        self.conv_forward("conv2d", x, w, b, geom, y, false)
    }

    fn conv2d_backward_input(
        &mut self,
        dy: &CpuTensor,
        w: &CpuTensor,
        geom: ConvGeom,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        conv_backward_input("conv2d_backward_input", dy, w, None, geom, dx)
    }

    fn conv2d_backward_weight(
        &mut self,
        x: &CpuTensor,
        dy: &CpuTensor,
        geom: ConvGeom,
        dw: &mut CpuTensor,
        db: &mut CpuTensor,
    ) -> Result<()> {
        let op = "conv2d_backward_weight";
        let d = conv_dims(op, &x.shape, &dw.shape, geom, &dy.shape)?;
        expect_len(op, "bias grad", numel(&db.shape), d.k)?;
        let p = members::count(op, &[("dw", dw), ("db", db)], &[("dy", dy)], &[("x", x)])?;
        for m in 0..p {
            let (dw, db) = (members::part_mut(dw, m), members::part_mut(db, m));
            let (x, dy) = (members::part(x, m), members::part(dy, m));
            conv::backward_weight_chunked(&d, x, dy, dw, db, self.batch_chunks);
        }
        Ok(())
    }

    fn max_pool2d(&mut self, x: &CpuTensor, geom: PoolGeom, y: &mut CpuTensor) -> Result<()> {
        let op = "max_pool2d";
        let (planes, d) = pool_dims(op, &x.shape, geom, &y.shape)?;
        let p = members::count(op, &[("y", y)], &[("x", x)], &[])?;
        for m in 0..p {
            pool::forward(planes, &d, members::part(x, m), members::part_mut(y, m));
        }
        Ok(())
    }

    fn max_pool2d_backward(&mut self, x: &CpuTensor, dy: &CpuTensor, geom: PoolGeom, dx: &mut CpuTensor) -> Result<()> {
        let op = "max_pool2d_backward";
        let (planes, d) = pool_dims(op, &x.shape, geom, &dy.shape)?;
        expect_shape(op, "dx", &dx.shape, &x.shape)?;
        let p = members::count(op, &[("dx", dx)], &[("x", x), ("dy", dy)], &[])?;
        for m in 0..p {
            pool::backward(planes, &d, members::part(x, m), members::part(dy, m), members::part_mut(dx, m));
        }
        Ok(())
    }

    // Element-wise ops treat a stacked tensor as one long one: members are back to back.
    fn relu(&mut self, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        members::count("relu", &[("y", y)], &[("x", x)], &[])?;
        expect_len("relu", "output", y.data.len(), x.data.len())?;
        dense::relu(&x.data, &mut y.data);
        Ok(())
    }

    fn relu_backward(&mut self, y: &CpuTensor, dy: &CpuTensor, dx: &mut CpuTensor) -> Result<()> {
        members::count("relu_backward", &[("dx", dx)], &[("y", y), ("dy", dy)], &[])?;
        expect_len("relu_backward", "dy", dy.data.len(), y.data.len())?;
        expect_len("relu_backward", "dx", dx.data.len(), y.data.len())?;
        dense::relu_backward(&y.data, &dy.data, &mut dx.data);
        Ok(())
    }

    // The fused ops are the unfused ones in sequence (the conv ones apply the ReLU image by image, while the
    // image is in cache): the reference stays obvious.
    fn conv2d_relu(
        &mut self,
        x: &CpuTensor,
        w: &CpuTensor,
        b: &CpuTensor,
        geom: ConvGeom,
        y: &mut CpuTensor,
    ) -> Result<()> {
        self.conv_forward("conv2d_relu", x, w, b, geom, y, true)
    }

    fn conv2d_backward_input_relu(
        &mut self,
        dy: &CpuTensor,
        w: &CpuTensor,
        mask: &CpuTensor,
        geom: ConvGeom,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        conv_backward_input("conv2d_backward_input_relu", dy, w, Some(mask), geom, dx)
    }

    fn conv2d_relu_pool(
        &mut self,
        x: &CpuTensor,
        w: &CpuTensor,
        b: &CpuTensor,
        geom: ConvGeom,
        pools: PoolChain,
        y: &mut CpuTensor,
        argmax: &mut CpuTensor,
    ) -> Result<()> {
        let op = "conv2d_relu_pool";
        let conv_shape = conv_out(op, &x.shape, &w.shape, geom)?;
        let pooled = pooled_shape(op, conv_shape, pools)?;
        expect_shape(op, "y", &y.shape, &pooled)?;
        expect_shape(op, "argmax", &argmax.shape, &pooled)?;
        let p = members::count(op, &[("y", y), ("argmax", argmax)], &[("w", w)], &[("x", x), ("b", b)])?;
        // The conv output lives only inside this op (kept between calls: one allocation per shape).
        let len = p * numel(&conv_shape);
        let mut conv = CpuTensor { data: std::mem::take(&mut self.scratch), shape: conv_shape.to_vec(), members: p };
        conv.data.resize(len, 0.0);
        let result = self.conv_forward(op, x, w, b, geom, &mut conv, true);
        if result.is_ok() {
            let [n, k, ho, wo] = conv_shape;
            for m in 0..p {
                let (y, arg) = (members::part_mut(y, m), members::part_mut(argmax, m));
                pool::chain_forward(n * k, (ho, wo), pools, members::part(&conv, m), y, arg);
            }
        }
        self.scratch = conv.data;
        result
    }

    fn conv2d_relu_pool_backward(
        &mut self,
        y: &CpuTensor,
        argmax: &CpuTensor,
        dy: &CpuTensor,
        pools: PoolChain,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        let op = "conv2d_relu_pool_backward";
        let [n, k, ho, wo] = <[usize; 4]>::try_from(dx.shape.as_slice())
            .map_err(|_| Error::shape(op, format!("dx must be 4-d [N,K,Ho,Wo], got {:?}", dx.shape)))?;
        let pooled = pooled_shape(op, [n, k, ho, wo], pools)?;
        for (what, t) in [("y", y), ("argmax", argmax), ("dy", dy)] {
            expect_shape(op, what, &t.shape, &pooled)?;
        }
        let p = members::count(op, &[("dx", dx)], &[], &[("y", y), ("argmax", argmax), ("dy", dy)])?;
        let cells = pools.edge() * pools.edge();
        if let Some(bad) = argmax.data.iter().find(|&&a| !(a >= 0.0 && a < cells as f32 && a.fract() == 0.0)) {
            return Err(Error::shape(op, format!("argmax holds {bad}, not a position in a {cells}-cell window")));
        }
        for m in 0..p {
            let ins = (members::part(y, m), members::part(argmax, m), members::part(dy, m));
            pool::chain_backward(n * k, (ho, wo), pools, ins, members::part_mut(dx, m));
        }
        Ok(())
    }

    fn max_pool2d_backward_relu(
        &mut self,
        x: &CpuTensor,
        dy: &CpuTensor,
        geom: PoolGeom,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        self.max_pool2d_backward(x, dy, geom, dx)?;
        dense::mask_in_place(&x.data, &mut dx.data);
        Ok(())
    }

    fn linear_relu(&mut self, x: &CpuTensor, w: &CpuTensor, b: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        self.linear(x, w, b, y)?;
        dense::relu_in_place(&mut y.data);
        Ok(())
    }

    fn linear_backward_input_relu(
        &mut self,
        dy: &CpuTensor,
        w: &CpuTensor,
        mask: &CpuTensor,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        masked("linear_backward_input_relu", mask, dx, |dx| self.linear_backward_input(dy, w, dx))
    }

    fn linear(&mut self, x: &CpuTensor, w: &CpuTensor, b: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        let op = "linear";
        let (n, i, o) = linear_dims(op, &x.shape, &w.shape, &y.shape)?;
        expect_len(op, "bias", numel(&b.shape), o)?;
        let p = members::count(op, &[("y", y)], &[("w", w)], &[("x", x), ("b", b)])?;
        for m in 0..p {
            let (x, w, b) = (members::part(x, m), members::part(w, m), members::part(b, m));
            dense::linear(n, i, o, x, w, b, members::part_mut(y, m));
        }
        Ok(())
    }

    fn linear_backward_input(&mut self, dy: &CpuTensor, w: &CpuTensor, dx: &mut CpuTensor) -> Result<()> {
        let op = "linear_backward_input";
        let (n, i, o) = linear_dims(op, &dx.shape, &w.shape, &dy.shape)?;
        let p = members::count(op, &[("dx", dx)], &[("dy", dy), ("w", w)], &[])?;
        for m in 0..p {
            dense::linear_backward_input(n, i, o, members::part(dy, m), members::part(w, m), members::part_mut(dx, m));
        }
        Ok(())
    }

    fn linear_backward_weight(
        &mut self,
        x: &CpuTensor,
        dy: &CpuTensor,
        dw: &mut CpuTensor,
        db: &mut CpuTensor,
    ) -> Result<()> {
        let op = "linear_backward_weight";
        let (n, i, o) = linear_dims(op, &x.shape, &dw.shape, &dy.shape)?;
        expect_len(op, "bias grad", numel(&db.shape), o)?;
        let p = members::count(op, &[("dw", dw), ("db", db)], &[("dy", dy)], &[("x", x)])?;
        for m in 0..p {
            let (dw, db) = (members::part_mut(dw, m), members::part_mut(db, m));
            dense::linear_backward_weight(n, i, o, members::part(x, m), members::part(dy, m), dw, db);
        }
        Ok(())
    }

    fn softmax_xent(
        &mut self,
        logits: &CpuTensor,
        labels: &Vec<u32>,
        dlogits: &mut CpuTensor,
        losses: &mut CpuTensor,
        slot: usize,
    ) -> Result<()> {
        let op = "softmax_xent";
        let &[n, l] = logits.shape.as_slice() else {
            return Err(Error::shape(op, format!("logits must be 2-d [N,L], got {:?}", logits.shape)));
        };
        check_labels(op, labels, n, l)?;
        expect_len(op, "dlogits", numel(&dlogits.shape), n * l)?;
        let p = members::count(op, &[("dlogits", dlogits), ("losses", losses)], &[("logits", logits)], &[])?;
        let slots = numel(&losses.shape);
        if slot >= slots {
            return Err(Error::shape(op, format!("loss slot {slot} is outside the {slots}-entry loss buffer")));
        }
        for m in 0..p {
            let loss = loss::softmax_xent(n, l, members::part(logits, m), labels, members::part_mut(dlogits, m));
            members::part_mut(losses, m)[slot] = loss;
        }
        Ok(())
    }

    fn eval_accumulate(&mut self, logits: &CpuTensor, labels: &Vec<u32>, acc: &mut CpuTensor) -> Result<()> {
        let op = "eval_accumulate";
        let &[n, l] = logits.shape.as_slice() else {
            return Err(Error::shape(op, format!("logits must be 2-d [N,L], got {:?}", logits.shape)));
        };
        check_labels(op, labels, n, l)?;
        expect_len(op, "acc", numel(&acc.shape), 2)?;
        let p = members::count(op, &[("acc", acc)], &[("logits", logits)], &[])?;
        for m in 0..p {
            let (sum, correct) = loss::eval_counts(n, l, members::part(logits, m), labels);
            let acc = members::part_mut(acc, m);
            acc[0] += sum as f32;
            acc[1] += correct as f32;
        }
        Ok(())
    }

    fn grad_norm(&mut self, grads: &[CpuTensor], norms: &mut CpuTensor, slot: usize) -> Result<()> {
        optim::grad_norm(grads, norms, slot)
    }

    fn sgd_update(
        &mut self,
        params: &mut [CpuTensor],
        grads: &[CpuTensor],
        bufs: &mut [CpuTensor],
        groups: &[u32],
        hyper: &Vec<u8>,
        norms: &CpuTensor,
    ) -> Result<()> {
        optim::sgd_update(self, params, grads, bufs, groups, hyper, norms)
    }

    fn adam_update(
        &mut self,
        params: &mut [CpuTensor],
        grads: &[CpuTensor],
        exp_avg: &mut [CpuTensor],
        exp_avg_sq: &mut [CpuTensor],
        max_exp_avg_sq: &mut [CpuTensor],
        groups: &[u32],
        hyper: &Vec<u8>,
        norms: &CpuTensor,
    ) -> Result<()> {
        let moments = optim::AdamSets { exp_avg, exp_avg_sq, max_exp_avg_sq };
        optim::adam_update(self, params, grads, moments, groups, hyper, norms)
    }
}
