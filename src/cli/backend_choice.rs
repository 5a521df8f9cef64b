//! `--backend auto|cpu|gpu` and `--adapter TEXT`, as docs/cli.md defines them.

use crate::Result;
use crate::cpu::CpuBackend;
use crate::gpu::{self, GpuBackend};

#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    /// auto: the best hardware GPU, else the CPU (software adapters are for checking, not speed);
    /// gpu: the best adapter of any kind, software included; cpu: the reference backend.
    #[arg(long, default_value = "auto", value_parser = ["auto", "cpu", "gpu"])]
    pub backend: String,
    /// Use the GPU adapter whose name contains TEXT (case-insensitive).
    #[arg(long)]
    pub adapter: Option<String>,
}

pub enum Chosen {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

pub fn choose(args: &BackendArgs) -> Result<Chosen> {
    let filter = args.adapter.as_deref();
    match args.backend.as_str() {
        "cpu" => Ok(Chosen::Cpu(CpuBackend::new())),
        "gpu" => Ok(Chosen::Gpu(Box::new(GpuBackend::new(filter, true)?))),
        _ => match gpu::best_adapter(filter, false) {
            Some(_) => Ok(Chosen::Gpu(Box::new(GpuBackend::new(filter, false)?))),
            None => {
                let why = if gpu::list_adapters().is_empty() {
                    "no GPU adapter found"
                } else {
                    "only software GPU adapters found (slower than the CPU backend; use --backend gpu to check on them)"
                };
                eprintln!("note: --backend auto uses the CPU backend: {why}");
                Ok(Chosen::Cpu(CpuBackend::new()))
            }
        },
    }
}
