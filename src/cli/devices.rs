//! `wgtrain devices` (filled in by the wgpu-backend issue).
use crate::Result;

#[derive(clap::Args, Debug)]
pub struct DevicesArgs {}

pub fn run(_args: DevicesArgs) -> Result<()> {
    Err(crate::Error::Usage("devices: not built yet".into()))
}
