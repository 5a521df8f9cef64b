//! TEMPORARY stand-in until the wgpu backend lands (same public API).
use crate::{Error, Result};
pub struct GpuBackend;
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> { Vec::new() }
pub fn best_adapter(_filter: Option<&str>, _allow_software: bool) -> Option<wgpu::AdapterInfo> { None }
impl GpuBackend {
    pub fn new(_filter: Option<&str>, _allow_software: bool) -> Result<GpuBackend> { Err(Error::NoAdapter("GPU backend not built yet".into())) }
}
impl GpuBackend { pub fn as_mut(&mut self) -> &mut crate::cpu::CpuBackend { unreachable!() } }
