//! The driver's pipeline cache (`wgpu::PipelineCache`; wgpu offers it on Vulkan), kept on disk between runs so
//! that a later run's pipelines come out of the driver's cache instead of its shader compiler.
//!
//! Where: `$WGTRAIN_PIPELINE_CACHE` if it names a directory, else `$XDG_CACHE_HOME/wgtrain`, else
//! `$HOME/.cache/wgtrain`; the file is named by `wgpu::util::pipeline_cache_key` (backend, vendor and device
//! id). `WGTRAIN_PIPELINE_CACHE=off` (or `0`) keeps the cache in memory only.
//!
//! Written atomically: the data goes to a temporary file in the same directory, which is then renamed over
//! the old one, so a concurrent run (parallel tests) reads the old file or the new one, never a torn one.
//! Reading is best effort: a missing or unreadable file gives an empty cache, and stale data (another driver
//! version) is refused by wgpu's header check (magic, version, adapter key, size) and by the driver's own,
//! and replaced by an empty cache (`fallback`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory of the cache file, None when turned off or no home is known.
fn dir() -> Option<PathBuf> {
    match std::env::var_os("WGTRAIN_PIPELINE_CACHE") {
        Some(v) if v == "off" || v == "0" => return None,
        Some(v) if !v.is_empty() => return Some(PathBuf::from(v)),
        _ => {}
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wgtrain"))
}

/// A pipeline cache for `device` (None without the `PIPELINE_CACHE` feature) and the file it persists to
/// (None when persistence is off or the backend has no cache key).
pub(crate) fn open(device: &wgpu::Device, info: &wgpu::AdapterInfo) -> Option<(wgpu::PipelineCache, Option<PathBuf>)> {
    if !device.features().contains(wgpu::Features::PIPELINE_CACHE) {
        return None;
    }
    let path = dir().zip(wgpu::util::pipeline_cache_key(info)).map(|(d, key)| d.join(key));
    let data = path.as_deref().and_then(|p| std::fs::read(p).ok());
    // SAFETY: `data` is only ever what `save` wrote, i.e. the bytes `PipelineCache::get_data` returned for an
    // adapter with the same cache key (the file name); wgpu validates its header and falls back to an empty
    // cache when it does not match.
    let cache = unsafe {
        device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
            label: Some("wgtrain pipeline cache"),
            data: data.as_deref(),
            fallback: true,
        })
    };
    log::debug!(
        "pipeline cache: {} bytes loaded from {}",
        data.as_ref().map_or(0, Vec::len),
        path.as_deref().map_or("nowhere".into(), |p| p.display().to_string())
    );
    Some((cache, path))
}

/// Write the cache's data to `path` atomically; failures are logged, never fatal (the cache only saves time).
pub(crate) fn save(cache: &wgpu::PipelineCache, path: &Path) {
    let Some(data) = cache.get_data() else { return };
    // Unique per process and per call: two backends of one process (parallel tests) may save at once.
    static SAVES: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!("{}.{}.tmp", std::process::id(), SAVES.fetch_add(1, Ordering::Relaxed)));
    let r = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&tmp, &data))
        .and_then(|()| std::fs::rename(&tmp, path));
    match r {
        Ok(()) => log::debug!("pipeline cache: {} bytes saved to {}", data.len(), path.display()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            log::warn!("pipeline cache: cannot save {}: {e}", path.display());
        }
    }
}
