//! Instance, adapter enumeration and selection, device creation with the adapter's own limits.

use std::sync::{Arc, Mutex};

use crate::{Error, Result};

/// How to install a GPU driver when none is found (also used by the CLI's exit-2 message).
pub const INSTALL_HINT: &str = "install a Vulkan driver for your GPU, or the software rasterizer lavapipe \
     (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`), or use `--backend cpu`";

fn make_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

fn enumerate(instance: &wgpu::Instance, backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(backends))
}

/// Every adapter wgpu finds, on all backends (Vulkan, Metal, DX12 and GL: `wgtrain devices` and
/// `compare --backends all` list them all).
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    enumerate(&make_instance(wgpu::Backends::all()), wgpu::Backends::all()).iter().map(|a| a.get_info()).collect()
}

/// A software rasterizer: device type `Cpu`, or a name that gives one away (lavapipe/llvmpipe, SwiftShader,
/// Microsoft's WARP) for drivers that report another type.
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_lowercase();
    info.device_type == wgpu::DeviceType::Cpu
        || ["llvmpipe", "lavapipe", "swiftshader", "microsoft basic render", "warp"].iter().any(|s| name.contains(s))
}

/// Higher is better: hardware type first, then the native compute APIs over GL.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 1,
        wgpu::DeviceType::Cpu => 0,
    };
    let ty = if is_software(info) { 0 } else { ty };
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    (ty, api)
}

fn matches(info: &wgpu::AdapterInfo, filter: Option<&str>) -> bool {
    filter.is_none_or(|f| info.name.to_lowercase().contains(&f.to_lowercase()))
}

/// Index of the best adapter whose name contains `filter` (case-insensitive), excluding software adapters
/// unless `allow_software`. Ranking: DiscreteGpu > IntegratedGpu > VirtualGpu > Other > Cpu, then
/// Vulkan/Metal/DX12 > GL, then enumeration order.
fn pick(infos: &[wgpu::AdapterInfo], filter: Option<&str>, allow_software: bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, info) in infos.iter().enumerate() {
        if !matches(info, filter) || (!allow_software && is_software(info)) {
            continue;
        }
        if best.is_none_or(|b| rank(info) > rank(&infos[b])) {
            best = Some(i);
        }
    }
    best
}

/// The adapter [`crate::gpu::GpuBackend::new`] would choose with the same arguments.
pub fn best_adapter(filter: Option<&str>, allow_software: bool) -> Option<wgpu::AdapterInfo> {
    best_adapter_in(&list_adapters(), filter, allow_software).cloned()
}

/// [`best_adapter`] among already-listed adapters (saves enumerating again).
pub fn best_adapter_in<'a>(
    infos: &'a [wgpu::AdapterInfo],
    filter: Option<&str>,
    allow_software: bool,
) -> Option<&'a wgpu::AdapterInfo> {
    pick(infos, filter, allow_software).map(|i| &infos[i])
}

/// One line per adapter: `name (backend, type, driver)`.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    let driver = [info.driver.as_str(), info.driver_info.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{} ({:?}, {:?}, driver: {})",
        info.name,
        info.backend,
        info.device_type,
        if driver.is_empty() { "?" } else { &driver }
    )
}

/// Device, queue and what we learnt about the adapter; errors raised outside any error scope land in
/// `errors` (instead of wgpu's default handler, which panics) and are turned into `Err` by the backend.
pub struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub errors: Arc<Mutex<Vec<String>>>,
}

impl Context {
    /// Open exactly the adapter described by `want` (same name, backend and device id), e.g. one entry of
    /// [`list_adapters`]; names alone cannot tell lavapipe on Vulkan from llvmpipe on GL.
    pub fn open_exact(want: &wgpu::AdapterInfo) -> Result<Context> {
        let instance = make_instance(want.backend.into());
        let adapters = enumerate(&instance, want.backend.into());
        let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
        let i = infos
            .iter()
            .position(|i| i.name == want.name && i.backend == want.backend && i.device == want.device)
            .ok_or_else(|| no_adapter(&infos, Some(&want.name), true))?;
        Self::open(&adapters[i], infos[i].clone())
    }

    /// wgpu's no-op adapter (wgpu built with its `noop` feature, as the examples are): every call is accepted
    /// and nothing runs, so what a step costs the host — recording, validation, submit — can be measured with no
    /// GPU and no software rasterizer competing for the cores.
    pub fn noop() -> Result<Context> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::NOOP;
        desc.backend_options.noop = wgpu::NoopBackendOptions::enabled();
        let instance = wgpu::Instance::new(desc);
        let adapters = enumerate(&instance, wgpu::Backends::NOOP);
        let Some(adapter) = adapters.first() else {
            return Err(Error::NoAdapter("no no-op adapter: build with wgpu's `noop` feature".into()));
        };
        Self::open(adapter, adapter.get_info())
    }

    pub fn new(filter: Option<&str>, allow_software: bool) -> Result<Context> {
        // The native compute APIs first; GL only when they offer nothing suitable (initialising GL/EGL is
        // slow and noisy on headless machines, and GL ranks last anyway).
        let native = wgpu::Backends::all() - wgpu::Backends::GL;
        let mut instance = make_instance(native);
        let mut adapters = enumerate(&instance, native);
        let mut infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
        if pick(&infos, filter, allow_software).is_none() {
            instance = make_instance(wgpu::Backends::all());
            adapters = enumerate(&instance, wgpu::Backends::all());
            infos = adapters.iter().map(|a| a.get_info()).collect();
        }
        let Some(i) = pick(&infos, filter, allow_software) else {
            return Err(no_adapter(&infos, filter, allow_software));
        };
        Self::open(&adapters[i], infos[i].clone())
    }

    fn open(adapter: &wgpu::Adapter, info: wgpu::AdapterInfo) -> Result<Context> {
        // Ask for everything the adapter offers: lavapipe's and real GPUs' storage-buffer limits are far above
        // WebGPU's defaults, and the batch sizes we accept are checked against these limits.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgtrain"),
            required_limits: limits.clone(),
            // Timestamps inside passes, when offered, for `GpuBackend::start_profiling` (costs nothing unused);
            // the driver's pipeline cache, when offered, for `pipeline_cache.rs`.
            required_features: adapter.features() & (super::profiler::FEATURES | wgpu::Features::PIPELINE_CACHE),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("cannot open {}: {e}", describe(&info))))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("wgpu: {e}");
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(e.to_string());
        }));
        let lost = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            log::error!("GPU device lost ({reason:?}): {msg}");
            lost.lock().unwrap_or_else(|p| p.into_inner()).push(format!("device lost ({reason:?}): {msg}"));
        });
        log::info!("GPU backend on {}", describe(&info));
        Ok(Context { device, queue, info, limits, errors })
    }

    /// The first error reported since the last call, as `Err`.
    pub fn take_error(&self) -> Result<()> {
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if e.is_empty() {
            return Ok(());
        }
        let msg = e.join("; ");
        e.clear();
        Err(Error::Gpu(msg))
    }
}

fn no_adapter(infos: &[wgpu::AdapterInfo], filter: Option<&str>, allow_software: bool) -> Error {
    let found = if infos.is_empty() {
        "wgpu found no adapters at all".to_string()
    } else {
        let list: Vec<String> = infos
            .iter()
            .map(|i| format!("  {}{}", describe(i), if is_software(i) { " [software]" } else { "" }))
            .collect();
        format!("adapters found:\n{}", list.join("\n"))
    };
    let what = match (filter, allow_software) {
        (Some(f), _) => format!("no GPU adapter whose name contains {f:?}"),
        (None, false) => "no hardware GPU adapter".to_string(),
        (None, true) => "no GPU adapter".to_string(),
    };
    Error::NoAdapter(format!("{what}; {found}\nTo get one, {INSTALL_HINT}"))
}
