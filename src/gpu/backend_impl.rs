//! The [`Backend`] trait on the GPU: argument plumbing only. Each op forwards to its launcher in `ops/`
//! (shape checks, parameters, grid, bindings); buffer and uniform management is in `alloc.rs`, `packed.rs` and
//! `cursor.rs`.
//!
//! Kept apart so the trait's long list of signatures does not hide how the backend works.

use super::buffer::byte_size;
use super::{GpuBackend, GpuIndices, GpuTensor, GpuUniform, ops};
use crate::backend::{Backend, ConvGeom, Head, PoolChain, PoolGeom};
use crate::{Error, Result};

impl Backend for GpuBackend {
    type Tensor = GpuTensor;
    type Indices = GpuIndices;
    type Uniform = GpuUniform;

    fn name(&self) -> String {
        format!("{} ({:?})", self.ctx.info.name, self.ctx.info.backend)
    }

    fn max_binding_bytes(&self) -> Option<u64> {
        let l = &self.ctx.limits;
        Some(l.max_storage_buffer_binding_size.min(l.max_buffer_size))
    }

    fn zeros(&mut self, shape: &[usize], label: &str) -> Result<GpuTensor> {
        self.new_tensor(1, shape, label, None)
    }

    fn zeros_members(&mut self, members: usize, shape: &[usize], label: &str) -> Result<GpuTensor> {
        self.new_tensor(members, shape, label, None)
    }

    fn members(&self, t: &GpuTensor) -> usize {
        t.members
    }

    fn zeros_packed_members(
        &mut self,
        members: usize,
        shapes: &[Vec<usize>],
        labels: &[String],
    ) -> Result<Vec<GpuTensor>> {
        self.new_packed(members, shapes, labels)
    }

    fn tensor(&mut self, data: &[f32], shape: &[usize], label: &str) -> Result<GpuTensor> {
        self.new_tensor(1, shape, label, Some(data))
    }

    fn indices(&mut self, data: &[u32], label: &str) -> Result<GpuIndices> {
        let bytes = byte_size(data.len());
        let (buffer, offset) = self.guarded_storage(bytes, label, "index tensor", vec![(0, bytes)])?;
        if !data.is_empty() {
            self.ctx.queue.write_buffer(&buffer, offset, bytemuck::cast_slice(data));
        }
        let id = self.new_id();
        if offset > 0 {
            self.views.insert(id, (offset, bytes + self.guard_overrun()));
        }
        Ok(GpuIndices { buffer, offset, len: data.len(), id, label: label.to_string() })
    }

    fn write(&mut self, dst: &mut GpuTensor, data: &[f32]) -> Result<()> {
        if data.len() != dst.total() {
            return Err(Error::shape(
                "write",
                format!(
                    "`{}`: {} values for {} member(s) of shape {:?}",
                    dst.label,
                    data.len(),
                    dst.members,
                    dst.shape
                ),
            ));
        }
        // Submit earlier dispatches first: they must not see this write (see the module docs).
        self.submit()?;
        let n = dst.numel();
        if n == 0 {
            return Ok(());
        }
        if dst.mstride == n {
            self.ctx.queue.write_buffer(&dst.buffer, dst.offset, bytemuck::cast_slice(data));
        } else {
            // A packed view: each member's copy is a set size apart; the gaps in between are other tensors.
            for (m, chunk) in data.chunks_exact(n).enumerate() {
                let at = dst.offset + (m * dst.mstride * 4) as u64;
                self.ctx.queue.write_buffer(&dst.buffer, at, bytemuck::cast_slice(chunk));
            }
        }
        Ok(())
    }

    fn write_indices(&mut self, dst: &mut GpuIndices, data: &[u32]) -> Result<()> {
        if data.len() != dst.len {
            return Err(Error::shape(
                "write_indices",
                format!("`{}`: {} values for length {}", dst.label, data.len(), dst.len),
            ));
        }
        self.submit()?;
        if !data.is_empty() {
            self.ctx.queue.write_buffer(&dst.buffer, dst.offset, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    fn read(&mut self, src: &GpuTensor) -> Result<Vec<f32>> {
        self.read_tensor(src)
    }

    fn read_set(&mut self, set: &[GpuTensor]) -> Result<Vec<Vec<f32>>> {
        self.read_packed_set(set)
    }

    fn shape<'a>(&self, t: &'a GpuTensor) -> &'a [usize] {
        &t.shape
    }

    fn zeros_packed(&mut self, shapes: &[Vec<usize>], labels: &[String]) -> Result<Vec<GpuTensor>> {
        self.new_packed(1, shapes, labels)
    }

    fn uniform(&mut self, bytes: usize, label: &str) -> Result<GpuUniform> {
        self.new_uniform(bytes, label)
    }

    fn write_uniform(&mut self, u: &mut GpuUniform, bytes: &[u8]) -> Result<()> {
        self.write_uniform_bytes(u, bytes)
    }

    fn begin_step(&mut self) -> Result<()> {
        // Work recorded before the step goes in its own submit, so the step's is the step alone.
        self.submit()?;
        self.in_step = true;
        Ok(())
    }

    fn end_step(&mut self) -> Result<()> {
        self.in_step = false;
        self.submit()?;
        Ok(())
    }

    fn gather_batch(
        &mut self,
        images: &GpuTensor,
        labels: &GpuIndices,
        order: &GpuIndices,
        offset: usize,
        x: &mut GpuTensor,
        y: &mut GpuIndices,
    ) -> Result<()> {
        ops::gather::gather_batch(self, images, labels, order, offset, x, y)
    }

    fn gather_pixels(
        &mut self,
        pixels: &GpuIndices,
        table: &GpuTensor,
        labels: &GpuIndices,
        order: &GpuIndices,
        offset: usize,
        x: &mut GpuTensor,
        y: &mut GpuIndices,
    ) -> Result<()> {
        ops::gather::gather_pixels(self, pixels, table, labels, order, offset, x, y)
    }

    fn conv2d(&mut self, x: &GpuTensor, w: &GpuTensor, b: &GpuTensor, geom: ConvGeom, y: &mut GpuTensor) -> Result<()> {
        ops::conv::forward(self, x, w, b, geom, y, false)
    }

    fn conv2d_relu(
        &mut self,
        x: &GpuTensor,
        w: &GpuTensor,
        b: &GpuTensor,
        geom: ConvGeom,
        y: &mut GpuTensor,
    ) -> Result<()> {
        ops::conv::forward(self, x, w, b, geom, y, true)
    }

    fn conv2d_backward_input_relu(
        &mut self,
        dy: &GpuTensor,
        w: &GpuTensor,
        mask: &GpuTensor,
        geom: ConvGeom,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        ops::conv::backward_input(self, dy, w, Some(mask), geom, dx)
    }

    fn max_pool2d_backward_relu(
        &mut self,
        x: &GpuTensor,
        dy: &GpuTensor,
        geom: PoolGeom,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        ops::pool::backward(self, x, dy, geom, dx, true)
    }

    fn linear_relu(&mut self, x: &GpuTensor, w: &GpuTensor, b: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        ops::linear::forward(self, x, w, b, y, true)
    }

    fn linear_backward_input_relu(
        &mut self,
        dy: &GpuTensor,
        w: &GpuTensor,
        mask: &GpuTensor,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        ops::linear::backward_input(self, dy, w, Some(mask), dx)
    }

    fn conv2d_backward_input(
        &mut self,
        dy: &GpuTensor,
        w: &GpuTensor,
        geom: ConvGeom,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        ops::conv::backward_input(self, dy, w, None, geom, dx)
    }

    fn conv2d_backward_weight(
        &mut self,
        x: &GpuTensor,
        dy: &GpuTensor,
        geom: ConvGeom,
        dw: &mut GpuTensor,
        db: &mut GpuTensor,
    ) -> Result<()> {
        ops::conv::backward_weight(self, x, dy, geom, dw, db)
    }

    fn max_pool2d(&mut self, x: &GpuTensor, geom: PoolGeom, y: &mut GpuTensor) -> Result<()> {
        ops::pool::forward(self, x, geom, y)
    }

    fn max_pool2d_backward(&mut self, x: &GpuTensor, dy: &GpuTensor, geom: PoolGeom, dx: &mut GpuTensor) -> Result<()> {
        ops::pool::backward(self, x, dy, geom, dx, false)
    }

    fn relu(&mut self, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        ops::elementwise::relu(self, x, y)
    }

    fn relu_backward(&mut self, y: &GpuTensor, dy: &GpuTensor, dx: &mut GpuTensor) -> Result<()> {
        ops::elementwise::relu_backward(self, y, dy, dx)
    }

    fn linear(&mut self, x: &GpuTensor, w: &GpuTensor, b: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        ops::linear::forward(self, x, w, b, y, false)
    }

    fn linear_backward_input(&mut self, dy: &GpuTensor, w: &GpuTensor, dx: &mut GpuTensor) -> Result<()> {
        ops::linear::backward_input(self, dy, w, None, dx)
    }

    fn linear_backward_weight(
        &mut self,
        x: &GpuTensor,
        dy: &GpuTensor,
        dw: &mut GpuTensor,
        db: &mut GpuTensor,
    ) -> Result<()> {
        ops::linear::backward_weight(self, x, dy, dw, db)
    }

    fn softmax_xent(
        &mut self,
        logits: &GpuTensor,
        labels: &GpuIndices,
        dlogits: &mut GpuTensor,
        losses: &mut GpuTensor,
        slot: usize,
    ) -> Result<()> {
        ops::xent::softmax_xent(self, logits, labels, dlogits, losses, slot)
    }

    fn conv2d_relu_pool(
        &mut self,
        x: &GpuTensor,
        w: &GpuTensor,
        b: &GpuTensor,
        geom: ConvGeom,
        pools: PoolChain,
        y: &mut GpuTensor,
        argmax: &mut GpuTensor,
    ) -> Result<()> {
        ops::conv::forward_pool(self, x, w, b, geom, pools, y, argmax)
    }

    fn conv2d_relu_pool_backward(
        &mut self,
        y: &GpuTensor,
        argmax: &GpuTensor,
        dy: &GpuTensor,
        pools: PoolChain,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        ops::pool::chain_backward(self, y, argmax, dy, pools, dx)
    }

    fn linear_softmax_xent(&mut self, h: Head<'_, GpuBackend>) -> Result<()> {
        ops::head::linear_softmax_xent(self, h)
    }

    fn eval_accumulate(&mut self, logits: &GpuTensor, labels: &GpuIndices, acc: &mut GpuTensor) -> Result<()> {
        ops::xent::eval_accumulate(self, logits, labels, acc)
    }

    fn grad_norm(&mut self, grads: &[GpuTensor], norms: &mut GpuTensor, slot: usize) -> Result<()> {
        ops::grad_norm::grad_norm(self, grads, norms, slot)
    }

    fn sgd_update(
        &mut self,
        params: &mut [GpuTensor],
        grads: &[GpuTensor],
        bufs: &mut [GpuTensor],
        groups: &[u32],
        hyper: &GpuUniform,
        norms: &GpuTensor,
    ) -> Result<()> {
        ops::update::sgd_update(self, params, grads, bufs, groups, hyper, norms)
    }

    fn adam_update(
        &mut self,
        params: &mut [GpuTensor],
        grads: &[GpuTensor],
        exp_avg: &mut [GpuTensor],
        exp_avg_sq: &mut [GpuTensor],
        max_exp_avg_sq: &mut [GpuTensor],
        groups: &[u32],
        hyper: &GpuUniform,
        norms: &GpuTensor,
    ) -> Result<()> {
        let sets = ops::update::AdamSets { exp_avg, exp_avg_sq, max_exp_avg_sq };
        ops::update::adam_update(self, params, grads, sets, groups, hyper, norms)
    }
}
