//! `wgtrain devices`: every adapter wgpu finds (name, backend, device type, driver) and which one
//! `--backend auto` would pick (docs/cli.md).
use crate::Result;
use crate::gpu;
use crate::output::stdio;

#[derive(clap::Args, Debug)]
pub struct DevicesArgs {
    /// Also say which adapter `--adapter TEXT` would select (name contains TEXT, case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub adapter: Option<String>,
}

pub fn run(args: DevicesArgs) -> Result<()> {
    // Collected first and written in one go: a failing stdout is reported once (see `output::stdio`).
    let mut out = String::new();
    macro_rules! println {
        ($($t:tt)*) => {{ out += &format!($($t)*); out.push('\n'); }};
    }
    let adapters = gpu::list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapters found; `--backend auto` uses the CPU backend.");
        println!("To get one, {}", gpu::INSTALL_HINT);
        return stdio::out(&out);
    }
    println!("{:<3} {:<44} {:<8} {:<14} driver", "#", "adapter", "backend", "type");
    for (i, a) in adapters.iter().enumerate() {
        let driver = format!("{} {}", a.driver, a.driver_info);
        let kind = format!("{:?}{}", a.device_type, if gpu::is_software(a) { " (software)" } else { "" });
        println!("{:<3} {:<44} {:<8} {:<14} {}", i, a.name, format!("{:?}", a.backend), kind, driver.trim());
    }
    let filter = args.adapter.as_deref();
    match gpu::best_adapter_in(&adapters, filter, false) {
        Some(a) => println!("--backend auto would use: {} ({:?})", a.name, a.backend),
        None => println!(
            "--backend auto would use: the CPU backend ({})",
            if filter.is_some() { "no hardware adapter matches --adapter" } else { "only software adapters" }
        ),
    }
    match gpu::best_adapter_in(&adapters, filter, true) {
        Some(a) => println!("--backend gpu would use:  {} ({:?})", a.name, a.backend),
        None => println!("--backend gpu would fail: no adapter matches --adapter"),
    }
    stdio::out(&out)
}
