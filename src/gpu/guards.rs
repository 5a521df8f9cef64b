//! Guard regions: a test hook that places every buffer a kernel may write between two poisoned regions, so that
//! a write outside its operand shows (`tests/gpu_guards.rs`; see [`ShaderChecks`](super::kernels::ShaderChecks)
//! for why it matters: the kernels run without naga's bounds checks).
//!
//! With guards on, every tensor, index tensor, packed set and split-K scratch buffer made from then on is
//! allocated as `[guard | data | guard]`, each guard [`GuardRegions::bytes`] long (the storage-offset alignment,
//! so the data keeps its alignment) and filled with [`POISON`]. The data is bound at the guard's end, and its
//! binding runs on over the tail guard: drivers with robust buffer access (lavapipe among them) drop a write
//! past the end of a binding, which would hide exactly the bug this looks for, so a write one element past an
//! output must land inside its binding — in the poison. [`GpuBackend::check_guard_regions`] then reads every
//! guarded buffer back and reports any guard word that is no longer poison, and any byte between a packed set's
//! views (zero by contract: the norm reads the whole set) that is no longer zero.
//!
//! Off (the default), nothing here runs and allocation is what it always was.

use super::GpuBackend;
use crate::Result;

/// The guard word: a quiet NaN with a payload no kernel computes (arithmetic on NaN inputs gives the canonical
/// NaN 0x7FC00000 on the adapters we know, and nothing copies a guard word into a guard).
pub const POISON: u32 = 0x7FC5_A5A5;

/// One guarded buffer: where its guards are and which bytes between them belong to tensors.
pub(crate) struct Guarded {
    label: String,
    buffer: wgpu::Buffer,
    /// Bytes of each guard (the data starts there).
    guard: u64,
    /// Bytes between the guards.
    inner: u64,
    /// Byte ranges (from the data's start) that tensors own; the rest of `inner` must stay zero.
    owned: Vec<(u64, u64)>,
}

/// The guarded buffers made since guards were switched on.
pub(crate) struct GuardRegions {
    pub bytes: u64,
    list: Vec<Guarded>,
}

impl GpuBackend {
    /// Put every buffer made from now on that a kernel may write (tensors, index tensors, packed sets, split-K
    /// scratch) between poisoned guard regions, or stop doing so (`false`; existing buffers keep theirs). For
    /// tests: a kernel that writes past its output then leaves a mark that
    /// [`GpuBackend::check_guard_regions`] finds.
    pub fn set_guard_regions(&mut self, on: bool) {
        self.guards = on.then(|| {
            let align = u64::from(self.ctx.limits.min_storage_buffer_offset_alignment);
            GuardRegions { bytes: 256u64.max(align), list: Vec::new() }
        });
        // Scratch buffers are cached by size: the next split must get one made in the new mode.
        self.scratch.clear();
    }

    /// One line per guarded buffer whose guards (or a packed set's gaps) were written since it was made, naming
    /// the buffer, the region and the first changed word; empty when every guard is intact.
    pub fn check_guard_regions(&mut self) -> Result<Vec<String>> {
        let Some(guards) = self.guards.take() else { return Ok(Vec::new()) };
        let mut problems = Vec::new();
        let mut result = Ok(());
        for g in &guards.list {
            let bytes = match self.read_bytes(&g.buffer, 0, 2 * g.guard + g.inner) {
                Ok(b) => b,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let words: &[u32] = bytemuck::cast_slice(&bytes);
            let (lo, hi) = ((g.guard / 4) as usize, ((g.guard + g.inner) / 4) as usize);
            let first_bad = |range: std::ops::Range<usize>, want: u32| range.into_iter().find(|&i| words[i] != want);
            if let Some(i) = first_bad(0..lo, POISON) {
                problems.push(format!(
                    "`{}`: guard before it written ({} words before its start: {:#010x})",
                    g.label,
                    lo - i,
                    words[i]
                ));
            }
            if let Some(i) = first_bad(hi..words.len(), POISON) {
                problems.push(format!(
                    "`{}`: guard after it written ({} words past its end: {:#010x})",
                    g.label,
                    i - hi,
                    words[i]
                ));
            }
            let owned = |i: usize| {
                let at = (i * 4) as u64 - g.guard;
                g.owned.iter().any(|&(s, e)| at >= s && at < e)
            };
            if let Some(i) = (lo..hi).find(|&i| !owned(i) && words[i] != 0) {
                problems.push(format!(
                    "`{}`: gap between views written (word {}: {:#010x})",
                    g.label,
                    i - lo,
                    words[i]
                ));
            }
        }
        self.guards = Some(guards);
        result.map(|()| problems)
    }

    /// A storage buffer for `bytes` of data: plain (offset 0) without guards; with guards, `[guard | data |
    /// guard]` with the guards poisoned and the data zero, at the returned offset. `owned` lists the byte ranges
    /// of the data that tensors own (the rest must stay zero).
    pub(crate) fn guarded_storage(
        &mut self,
        bytes: u64,
        label: &str,
        what: &str,
        owned: Vec<(u64, u64)>,
    ) -> Result<(wgpu::Buffer, u64)> {
        let Some(guard) = self.guards.as_ref().map(|g| g.bytes) else {
            return Ok((self.storage(bytes, label, what)?, 0));
        };
        let inner = bytes.next_multiple_of(4);
        let buffer = self.storage(2 * guard + inner, label, what)?;
        let mut fill = vec![POISON; ((2 * guard + inner) / 4) as usize];
        fill[(guard / 4) as usize..((guard + inner) / 4) as usize].fill(0);
        self.ctx.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(&fill));
        let list = &mut self.guards.as_mut().expect("checked above").list;
        list.push(Guarded { label: label.to_string(), buffer: buffer.clone(), guard, inner, owned });
        Ok((buffer, guard))
    }

    /// Write `v` one element past the end of `t`'s data, as a kernel overrunning `t` by one would (for the test
    /// of the guard check itself).
    #[doc(hidden)]
    pub fn write_past_end_for_test(&mut self, t: &super::GpuTensor, v: f32) -> Result<()> {
        self.submit()?;
        self.ctx.queue.write_buffer(&t.buffer, t.offset + (t.span() * 4) as u64, bytemuck::bytes_of(&v));
        Ok(())
    }

    /// Bytes a binding of guarded data runs on past the data (into its tail guard or the set's next bytes), so
    /// that a write just past the end stays inside the binding; 0 without guards.
    pub(crate) fn guard_overrun(&self) -> u64 {
        self.guards.as_ref().map_or(0, |g| g.bytes)
    }
}
