//! TEMPORARY stand-in until the wgpu backend lands (same public API).
use crate::{Error, Result};
use crate::cpu::CpuBackend;
pub struct GpuBackend(std::convert::Infallible);
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> { Vec::new() }
pub fn best_adapter(_filter: Option<&str>, _allow_software: bool) -> Option<wgpu::AdapterInfo> { None }
impl GpuBackend {
    pub fn new(_filter: Option<&str>, _allow_software: bool) -> Result<GpuBackend> { Err(Error::NoAdapter("GPU backend not built yet".into())) }
}
impl std::ops::Deref for GpuBackend { type Target = CpuBackend; fn deref(&self) -> &CpuBackend { match self.0 {} } }
impl std::ops::DerefMut for GpuBackend { fn deref_mut(&mut self) -> &mut CpuBackend { match self.0 {} } }
impl GpuBackend { pub fn with_adapter(_a: &wgpu::AdapterInfo) -> Result<GpuBackend> { Err(Error::NoAdapter("x".into())) } }
