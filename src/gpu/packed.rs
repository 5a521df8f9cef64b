//! Packed sets: several tensors as views of one buffer, so a multi-tensor op binds the whole buffer once and
//! covers every tensor in one dispatch. Views start at multiples of the storage-offset alignment (256 bytes);
//! the gaps are zero at creation and no op writes them (views are bound with their own byte range), so a
//! reduction over the whole buffer (the gradient norm) may include them.
//!
//! With a member axis the buffer holds P copies of the set, member-major: member m's copy is an ordinary packed
//! set at byte m·S, S being the set's size rounded up to the alignment (so every copy of every view stays
//! aligned). A multi-tensor op then reads member m's whole set as one range and shares one segment table (built
//! from member 0's offsets) between all members. A view's binding covers its P copies, S apart, and so also
//! the other tensors' copies in between: harmless for the read-only operands that overlap, and no dispatch binds
//! a writable view next to another view of its own buffer.

use super::buffer::{GpuTensor, PackRef, Res, byte_size};
use super::ops::u;
use super::params::Segment;
use super::{GpuBackend, WG};
use crate::backend::numel;
use crate::{Error, Result};

impl GpuBackend {
    pub(crate) fn new_packed(
        &mut self,
        members: usize,
        shapes: &[Vec<usize>],
        labels: &[String],
    ) -> Result<Vec<GpuTensor>> {
        let label0 = labels.first().map_or("", |l| l.as_str());
        crate::backend::check_members("zeros_packed_members", label0, members)?;
        if labels.len() != shapes.len() {
            return Err(Error::shape("zeros_packed", format!("{} shapes but {} labels", shapes.len(), labels.len())));
        }
        let (Some(first), Some(last)) = (labels.first(), labels.last()) else { return Ok(Vec::new()) };
        // Both are powers of two, so the larger is a multiple of the smaller.
        let align = 256u64.max(u64::from(self.ctx.limits.min_storage_buffer_offset_alignment));
        let mut ranges = Vec::with_capacity(shapes.len());
        let mut end = 0u64;
        for s in shapes {
            let offset = end.next_multiple_of(align);
            let size = byte_size(numel(s));
            ranges.push((offset, size));
            end = offset + size;
        }
        let label = if shapes.len() == 1 { first.clone() } else { format!("{first}…{last}") };
        // One member's set ends at `end`; later members start at multiples of the aligned set size. The last
        // member needs no padding, so one member is exactly the single-run set.
        let set_bytes = end.next_multiple_of(align);
        let bytes = (members as u64 - 1).saturating_mul(set_bytes).saturating_add(end);
        let what =
            if members == 1 { "packed tensors".to_string() } else { format!("packed tensors of {members} members") };
        let owned: Vec<(u64, u64)> = (0..members as u64)
            .flat_map(|m| ranges.iter().map(move |&(o, s)| (m * set_bytes + o, m * set_bytes + o + s)))
            .collect();
        let (buffer, base) = self.guarded_storage(bytes, &label, &what, owned)?;
        let overrun = self.guard_overrun();
        let pack = self.new_id();
        if base > 0 {
            self.views.insert(pack, (base, bytes + overrun));
        }
        let count = shapes.len();
        let mstride = (set_bytes / 4) as usize;
        let mut out = Vec::with_capacity(count);
        for (index, ((shape, label), &(offset, size))) in shapes.iter().zip(labels).zip(&ranges).enumerate() {
            let id = self.new_id();
            self.views.insert(id, (base + offset, (members as u64 - 1) * set_bytes + size + overrun));
            let pack = Some(PackRef { id: pack, base, index, count, bytes, end, set_bytes, members });
            out.push(GpuTensor {
                buffer: buffer.clone(),
                offset: base + offset,
                pack,
                shape: shape.clone(),
                members,
                mstride,
                id,
                label: label.clone(),
            });
        }
        Ok(out)
    }

    /// One binding that covers the views `a` and `b` of one packed set with every member's copies (the last
    /// layer's weight and bias gradients, which the fused head writes together), as (id, where `a` starts, where `b`
    /// starts) in elements of that binding; `None` when they are not views of one set (a `bias: false` layer's
    /// scratch gradient). Made once per pair and kept, like the views themselves.
    pub(crate) fn pair_span(&mut self, a: &GpuTensor, b: &GpuTensor) -> Option<(u64, u32, u32)> {
        let (pa, pb) = (a.pack?, b.pack?);
        if pa.id != pb.id || a.members != b.members || a.buffer != b.buffer {
            return None;
        }
        let start = a.offset.min(b.offset);
        let at = |t: &GpuTensor| u32::try_from((t.offset - start) / 4).ok();
        let (a_at, b_at) = (at(a)?, at(b)?);
        if let Some(&id) = self.spans.get(&(a.id, b.id)) {
            return Some((id, a_at, b_at));
        }
        let end = |t: &GpuTensor| t.offset + (t.span() * 4) as u64;
        let size = end(a).max(end(b)) - start + self.guard_overrun();
        let id = self.new_id();
        self.views.insert(id, (start, size));
        self.spans.insert((a.id, b.id), id);
        Some((id, a_at, b_at))
    }

    /// Every member's values of `t`, member-major: one copy of the range its binding covers, then each member's
    /// part of it (a packed view's copies lie a set size apart; a plain tensor's are contiguous).
    pub(crate) fn read_tensor(&mut self, t: &GpuTensor) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(&t.buffer.clone(), t.offset, (t.span() * 4) as u64)?;
        let all: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        if t.members == 1 || t.mstride == t.numel() {
            return Ok(all);
        }
        Ok(members_of(t, &all, 0))
    }

    /// Read a whole packed set (exactly the views of one `zeros_packed` call, in order) with one copy of its
    /// buffer and one wait; anything else is read tensor by tensor.
    pub(crate) fn read_packed_set(&mut self, set: &[GpuTensor]) -> Result<Vec<Vec<f32>>> {
        let whole = set.first().and_then(|t| t.pack).is_some_and(|first| {
            first.count == set.len()
                && set.iter().enumerate().all(|(i, t)| t.pack.is_some_and(|p| p.id == first.id && p.index == i))
        });
        if !whole {
            return set.iter().map(|t| self.read_tensor(t)).collect();
        }
        let (base, bytes) = set[0].pack.map_or((0, 0), |p| (p.base, p.bytes));
        let all: Vec<f32> = bytemuck::pod_collect_to_vec(&self.read_bytes(&set[0].buffer.clone(), base, bytes)?);
        Ok(set.iter().map(|t| members_of(t, &all, ((t.offset - base) / 4) as usize)).collect())
    }

    /// A constant storage buffer holding `bytes`, created once per distinct content (segment tables).
    fn table(&mut self, bytes: &[u8], label: &str) -> Result<(u64, wgpu::Buffer)> {
        if let Some((id, b)) = self.tables.get(bytes) {
            return Ok((*id, b.clone()));
        }
        let buffer = self.storage(bytes.len() as u64, label, "segment table")?;
        self.ctx.queue.write_buffer(&buffer, 0, bytes);
        let id = self.new_id();
        self.tables.insert(bytes.to_vec(), (id, buffer.clone()));
        Ok((id, buffer))
    }

    /// The segment table of a packed set (tensor t in group `groups[t]`) and the number of workgroups of
    /// [`WG`] threads that cover it. Built in a reused host buffer, so a steady-state step allocates nothing.
    pub(crate) fn segment_table(
        &mut self,
        op: &str,
        set: &[GpuTensor],
        groups: &[u32],
    ) -> Result<((u64, wgpu::Buffer), usize)> {
        let mut bytes = std::mem::take(&mut self.table_bytes);
        bytes.clear();
        let mut wgs = 0usize;
        for (t, &group) in set.iter().zip(groups) {
            let base = t.pack.map_or(0, |p| p.base);
            let seg = Segment {
                offset: u(op, ((t.offset - base) / 4) as usize)?,
                len: u(op, t.numel())?,
                group,
                first_wg: u(op, wgs)?,
            };
            bytes.extend_from_slice(bytemuck::bytes_of(&seg));
            wgs += t.numel().div_ceil(WG);
        }
        let table = self.table(&bytes, "segments");
        self.table_bytes = bytes;
        Ok((table?, wgs))
    }

    /// A small storage buffer bound where a kernel declares a state set that this call does not use (SGD
    /// without momentum, Adam without amsgrad); the kernel never touches it.
    pub(crate) fn placeholder(&mut self) -> Result<(u64, wgpu::Buffer)> {
        if let Some(p) = &self.placeholder {
            return Ok(p.clone());
        }
        let buffer = self.storage(16, "unused_state", "placeholder")?;
        let p = (self.new_id(), buffer);
        self.placeholder = Some(p.clone());
        Ok(p)
    }
}

/// Each member's copy of `t`, member-major, from `all`, which holds `t`'s member 0 at element `start`.
fn members_of(t: &GpuTensor, all: &[f32], start: usize) -> Vec<f32> {
    let n = t.numel();
    let mut out = Vec::with_capacity(t.total());
    for m in 0..t.members {
        let at = start + m * t.mstride;
        out.extend_from_slice(&all[at..at + n]);
    }
    out
}

/// The whole buffer of the packed set `set`, which must be every tensor of one `zeros_packed` call, in order.
pub(crate) fn whole_pack<'a>(op: &'static str, what: &str, set: &'a [GpuTensor]) -> Result<(PackRef, Res<'a>)> {
    let not_packed = || {
        Error::shape(
            op,
            format!("{what} must be one whole packed set (all the tensors of one zeros_packed call, in order)"),
        )
    };
    let first = set.first().ok_or_else(not_packed)?;
    let p = first.pack.ok_or_else(not_packed)?;
    let whole = set.len() == p.count
        && set.iter().enumerate().all(|(i, t)| t.pack.is_some_and(|q| q.id == p.id && q.index == i));
    if !whole {
        return Err(not_packed());
    }
    Ok((p, Res { id: p.id, buffer: &first.buffer }))
}

/// `b` has the layout of `a` (its tensors at the same offsets), so one segment table serves both.
pub(crate) fn same_layout(op: &'static str, what: &str, a: &[GpuTensor], b: &[GpuTensor]) -> Result<()> {
    if a.iter().zip(b).any(|(x, y)| x.offset != y.offset) {
        return Err(Error::shape(op, format!("{what} are packed with another layout than the parameters")));
    }
    Ok(())
}
