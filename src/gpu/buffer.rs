//! Device tensors and the one readback path.
//!
//! Every tensor is one storage buffer (STORAGE | COPY_SRC | COPY_DST) that lives as long as the tensor.
//! `id` is unique for the backend's lifetime (never reused), so bind groups can be cached by buffer id.

/// An f32 tensor resident on the GPU. Not `Clone`: two handles to one buffer would defeat the `&mut`
/// aliasing rules the [`Backend`](crate::backend::Backend) ops rely on.
#[derive(Debug)]
pub struct GpuTensor {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) shape: Vec<usize>,
    pub(crate) id: u64,
    pub(crate) label: String,
}

/// A u32 tensor (labels, orders) resident on the GPU.
#[derive(Debug)]
pub struct GpuIndices {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) len: usize,
    pub(crate) id: u64,
    pub(crate) label: String,
}

impl GpuTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn label(&self) -> &str {
        &self.label
    }
    pub(crate) fn res(&self) -> Res<'_> {
        Res { id: self.id, buffer: &self.buffer }
    }
}

impl GpuIndices {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn label(&self) -> &str {
        &self.label
    }
    pub(crate) fn res(&self) -> Res<'_> {
        Res { id: self.id, buffer: &self.buffer }
    }
}

/// A buffer to bind, with the id its bind groups are cached under.
#[derive(Clone, Copy)]
pub(crate) struct Res<'a> {
    pub id: u64,
    pub buffer: &'a wgpu::Buffer,
}

/// Bytes of a buffer holding `n` 4-byte values: wgpu rejects zero-sized bindings, so empty tensors get 4.
pub(crate) fn byte_size(n: usize) -> u64 {
    (n.max(1) * 4) as u64
}
