//! Device tensors, uniforms, and the one readback path.
//!
//! A tensor is a storage buffer (STORAGE | COPY_SRC | COPY_DST) that lives as long as the tensor, or a view into
//! one shared buffer when made by `zeros_packed`: then `offset` is the view's byte offset (a multiple of the
//! device's storage-offset alignment, 256) and `pack` says which packed set it belongs to. (With guard regions
//! on, a test hook, every tensor is such a view, between poisoned guards: see `guards.rs`.) `id` is unique for the
//! backend's lifetime (never reused, views included), so bind groups can be cached by tensor id.
//!
//! Member axis: a tensor holds `members` copies of its shape, `mstride` elements apart (member m's copy starts at
//! element m·mstride of its binding). A plain tensor's copies are contiguous (`mstride` = numel), so stacked
//! activations read as one [P·N, …] tensor; a packed set is member-major (member m's copy of the whole set is an
//! ordinary packed set at m·S), so a view's copies lie S apart and its binding covers all of them. Kernels take
//! the stride of each operand as a parameter rather than assuming either layout, and stride 0 for a shared
//! one-member input.

/// An f32 tensor resident on the GPU. Not `Clone`: two handles to one buffer would defeat the `&mut`
/// aliasing rules the [`Backend`](crate::backend::Backend) ops rely on.
#[derive(Debug)]
pub struct GpuTensor {
    pub(crate) buffer: wgpu::Buffer,
    /// Byte offset of the tensor in `buffer` (0 unless packed).
    pub(crate) offset: u64,
    pub(crate) pack: Option<PackRef>,
    pub(crate) shape: Vec<usize>,
    /// How many copies of `shape` the tensor holds (1 unless made with a member axis).
    pub(crate) members: usize,
    /// Elements between the starts of consecutive members' copies: numel for a plain tensor, the set size S
    /// of a packed set's view.
    pub(crate) mstride: usize,
    pub(crate) id: u64,
    pub(crate) label: String,
}

/// Where a packed view sits in its set: the set's whole buffer is bound under `id` by the multi-tensor ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackRef {
    pub id: u64,
    /// Byte offset of the set in its buffer: 0, or a guard's length with guard regions (`guards.rs`). View
    /// offsets include it; the set's own binding starts there.
    pub base: u64,
    pub index: usize,
    pub count: usize,
    /// Size of the whole buffer: (members − 1)·`set_bytes` + `end`.
    pub bytes: u64,
    /// Bytes of one member's copy of the set up to the end of its last tensor (what a reduction over the set
    /// covers).
    pub end: u64,
    /// The member stride in bytes: `end` rounded up to the storage-offset alignment, so member m's copy of
    /// every tensor keeps the alignment of member 0's.
    pub set_bytes: u64,
    pub members: usize,
}

/// A u32 tensor (labels, orders) resident on the GPU.
#[derive(Debug)]
pub struct GpuIndices {
    pub(crate) buffer: wgpu::Buffer,
    /// Byte offset of the values in `buffer` (0 unless made between guard regions, see `guards.rs`).
    pub(crate) offset: u64,
    pub(crate) len: usize,
    pub(crate) id: u64,
    pub(crate) label: String,
}

/// A uniform the host rewrites ([`Backend::write_uniform`](crate::backend::Backend::write_uniform)); `host` is
/// the last value written, for the argument checks that depend on it (amsgrad, momentum).
#[derive(Debug)]
pub struct GpuUniform {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) id: u64,
    pub(crate) host: Vec<u8>,
    pub(crate) label: String,
}

impl GpuTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn label(&self) -> &str {
        &self.label
    }
    /// Elements of every member's copy (members · numel).
    pub(crate) fn total(&self) -> usize {
        self.members * self.numel()
    }
    /// Elements the binding of this tensor covers: from member 0's first to member P−1's last element.
    pub(crate) fn span(&self) -> usize {
        (self.members - 1) * self.mstride + self.numel()
    }
    /// The binding of this tensor; a view's byte range is looked up by id when its bind group is built.
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

impl GpuUniform {
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// A buffer to bind, with the id its bind groups are cached under. Bound whole, unless the id is a packed view's
/// (the backend keeps the byte range of every view by id, so no launcher needs to know about packing).
#[derive(Clone, Copy)]
pub(crate) struct Res<'a> {
    pub id: u64,
    pub buffer: &'a wgpu::Buffer,
}

/// Bytes of a buffer holding `n` 4-byte values: wgpu rejects zero-sized bindings, so empty tensors get 4.
pub(crate) fn byte_size(n: usize) -> u64 {
    (n.max(1) * 4) as u64
}
