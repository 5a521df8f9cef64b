//! `wgtrain schedule` (filled in by the scheduler issue).
use crate::Result;

#[derive(clap::Args, Debug)]
pub struct ScheduleArgs {}

pub fn run(_args: ScheduleArgs) -> Result<()> {
    Err(crate::Error::Usage("schedule: not built yet".into()))
}
