//! `wgtrain compare`: docs/cli.md. Same seeded run on the CPU and on each requested GPU adapter.

use std::path::PathBuf;

use crate::cli::train::{RunArgs, prepare};
use crate::compare::{self, Label, Row};
use crate::cpu::CpuBackend;
use crate::gpu::{self, GpuBackend};
use crate::output::{OutputKind, stdio};
use crate::{Error, Result};

/// Steps when neither --steps nor --epochs is given: enough for a stable median, short on software adapters.
pub const DEFAULT_STEPS: usize = 50;

#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Comma-separated: `cpu`, `gpu` (best adapter), a wgpu backend (`vulkan`, `gl`, `metal`, `dx12`), or
    /// text matching adapter names; `all` = the CPU plus every adapter of every wgpu backend.
    #[arg(long, default_value = "all")]
    pub backends: String,
    /// Write the results as JSON (`{"runs":[…]}`, docs/cli.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw loss curves and images/s (FILE.svg or FILE.png).
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// One requested run: the CPU backend or a GPU adapter (index into `gpu::list_adapters()`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Cpu,
    Adapter(usize),
}

fn describe(adapters: &[wgpu::AdapterInfo]) -> String {
    let mut s = String::from("cpu, gpu, all");
    for a in adapters {
        s += &format!(", {:?}: {} ({:?})", a.backend, a.name, a.device_type);
    }
    s
}

fn resolve(spec: &str, adapters: &[wgpu::AdapterInfo]) -> Result<Vec<Target>> {
    let items: Vec<String> = spec.split(',').map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        return Err(Error::Usage(format!("--backends is empty; available: {}", describe(adapters))));
    }
    let mut out = vec![Target::Cpu];
    let push = |t: Target, out: &mut Vec<Target>| {
        if !out.contains(&t) {
            out.push(t)
        }
    };
    for item in items {
        let found: Vec<usize> = match item.as_str() {
            "cpu" => vec![],
            "all" => (0..adapters.len()).collect(),
            "gpu" => gpu::best_adapter(None, true)
                .and_then(|b| adapters.iter().position(|a| a.name == b.name && a.backend == b.backend))
                .into_iter()
                .collect(),
            text => adapters
                .iter()
                .enumerate()
                .filter(|(_, a)| {
                    format!("{:?}", a.backend).to_lowercase() == text || a.name.to_lowercase().contains(text)
                })
                .map(|(i, _)| i)
                .collect(),
        };
        if found.is_empty() && item != "cpu" {
            return Err(Error::Usage(format!(
                "--backends: nothing matches `{item}`; available: {}",
                describe(adapters)
            )));
        }
        for i in found {
            push(Target::Adapter(i), &mut out);
        }
    }
    Ok(out)
}

/// Train options that `compare` cannot honour: refused rather than silently ignored.
fn refuse_unsupported(run: &RunArgs) -> Result<()> {
    let given = super::resume::explicit_options("compare");
    super::unused::refuse("compare", &given, &super::unused::RUN_FILES[2..])?;
    super::unused::refuse(
        "compare",
        &given,
        &[
            ("early_stop_patience", "compare runs a fixed number of steps on every backend"),
            ("early_stop_min_delta", "compare runs a fixed number of steps on every backend"),
            ("restore_best", "compare keeps no weights"),
        ],
    )?;
    let unsupported = [
        (run.metrics.is_some(), "--metrics", "compare's results go to --json"),
        (run.save_weights.is_some(), "--save-weights", "compare trains one model per backend; use `wgtrain train`"),
        (run.limit_test.is_some(), "--limit-test", "compare does not evaluate on the test set"),
    ];
    match unsupported.iter().find(|(given, _, _)| *given) {
        Some((_, option, why)) => Err(Error::Usage(format!("compare does not support {option}: {why}"))),
        None => Ok(()),
    }
}

pub fn run(args: CompareArgs) -> Result<()> {
    refuse_unsupported(&args.run)?;
    // Before any backend runs: a bad --json or --plot path must not cost the whole comparison.
    super::train::check_run_outputs(
        &args.run,
        &[("--json", args.json.as_deref(), OutputKind::File), ("--plot", args.plot.as_deref(), OutputKind::Plot)],
    )?;
    let mut run_args = args.run.clone();
    if run_args.steps.is_none() {
        run_args.steps = Some(DEFAULT_STEPS);
    }
    let adapters = gpu::list_adapters();
    let targets = resolve(&args.backends, &adapters)?;
    let prepared = prepare(&run_args)?;
    let mut setup = prepared.setup;
    setup.sync_each_step = true;
    setup.test = None;
    let shared = compare::Shared {
        arch: &prepared.arch,
        weights: &prepared.weights,
        optim: &prepared.optim,
        scheduler: &prepared.scheduler,
    };
    let mut rows: Vec<Row> = Vec::new();
    for (k, t) in targets.iter().enumerate() {
        let label = match t {
            Target::Cpu => Label { backend: "cpu".into(), adapter: "reference (Rust)".into(), driver: "-".into() },
            Target::Adapter(i) => {
                let a = &adapters[*i];
                Label {
                    backend: format!("{:?}", a.backend),
                    adapter: a.name.clone(),
                    driver: format!("{} {}", a.driver, a.driver_info).trim().to_string(),
                }
            }
        };
        stdio::note(&format!(
            "[{}/{}] {} {}: {} steps at batch {}…",
            k + 1,
            targets.len(),
            label.backend,
            label.adapter,
            setup.steps,
            setup.batch_size
        ));
        let row = match t {
            Target::Cpu => compare::run_one(&mut CpuBackend::new(), label, &setup, &shared)?,
            Target::Adapter(i) => {
                let mut b = GpuBackend::with_adapter(&adapters[*i])?;
                compare::run_one(&mut b, label, &setup, &shared)?
            }
        };
        stdio::note(&format!("      {:.2} ms/step, final loss {:.5}", row.ms_per_step, row.final_loss));
        rows.push(row);
    }
    compare::relate_to_cpu(&mut rows);
    // Files first: they are the durable result, and a closed stdout (`| head`) must not skip them.
    if let Some(path) = &args.json {
        crate::output::write_file(path, compare::to_json(&rows).as_bytes())?;
    }
    if let Some(path) = &args.plot {
        compare::plot::draw(path, &rows)?;
    }
    stdio::out(&compare::table(&rows))
}
