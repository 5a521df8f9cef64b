//! `--backend auto|cpu|gpu` and `--adapter TEXT`, as docs/cli.md defines them.

use crate::cpu::CpuBackend;
use crate::gpu::{self, GpuBackend};
use crate::output::stdio;
use crate::{Error, Result};

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct BackendArgs {
    /// auto: the best hardware GPU, else the CPU (software adapters are for checking, not speed);
    /// gpu: the best adapter of any kind, software included; cpu: the reference backend.
    #[arg(long, default_value = "auto", value_parser = ["auto", "cpu", "gpu"])]
    pub backend: String,
    /// Use the GPU adapter whose name contains TEXT (case-insensitive; see `wgtrain devices`). With
    /// --backend auto only hardware adapters match; refused with --backend cpu.
    #[arg(long, value_name = "TEXT")]
    pub adapter: Option<String>,
}

pub enum Chosen {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

pub fn choose(args: &BackendArgs) -> Result<Chosen> {
    let filter = args.adapter.as_deref();
    match args.backend.as_str() {
        "cpu" if filter.is_some() => Err(Error::Usage(
            "--adapter chooses a GPU adapter and has no effect with --backend cpu; drop one of them".into(),
        )),
        "cpu" => Ok(Chosen::Cpu(CpuBackend::new())),
        // Asking for an adapter by name and silently getting the CPU would be a surprise: use it or fail.
        "auto" if filter.is_some() => match GpuBackend::new(filter, false) {
            Ok(b) => Ok(Chosen::Gpu(Box::new(b))),
            Err(Error::NoAdapter(m)) => Err(Error::NoAdapter(format!(
                "{m}\n(--backend auto considers hardware adapters only; --backend gpu also accepts software ones)"
            ))),
            Err(e) => Err(e),
        },
        "gpu" => Ok(Chosen::Gpu(Box::new(GpuBackend::new(filter, true)?))),
        _ => match gpu::best_adapter(filter, false) {
            Some(_) => Ok(Chosen::Gpu(Box::new(GpuBackend::new(filter, false)?))),
            None => {
                let why = if gpu::list_adapters().is_empty() {
                    "no GPU adapter found"
                } else {
                    "only software GPU adapters found (slower than the CPU backend; use --backend gpu to check on them)"
                };
                stdio::note(&format!("note: --backend auto uses the CPU backend: {why}"));
                Ok(Chosen::Cpu(CpuBackend::new()))
            }
        },
    }
}
