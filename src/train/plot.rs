//! `train --plot`: the run as one figure, every panel against the optimizer step — the batch loss (raw and
//! smoothed), the learning rate of each parameter group, the momentum (Adam: β1), the gradient norm, and per
//! epoch the validation/test loss and accuracy.

use std::path::Path;

use super::metrics::Event;
use crate::Result;
use crate::lrfind::Smoother;
use crate::plot::{Chart, Panel, Series, stairs};

/// Smoothing of the loss curve (the same bias-corrected average as lr-find's).
const SMOOTHING: f64 = 0.98;

fn series(label: &str, points: Vec<(f64, f64)>) -> Series {
    Series { label: label.into(), points }
}

/// The figure for the events of a run.
pub fn chart(events: &[Event], title: &str) -> Chart {
    let (mut raw, mut smooth, mut norm, mut momentum) = (vec![], vec![], vec![], vec![]);
    let mut lrs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut smoother = Smoother::new(SMOOTHING);
    let (mut val_loss, mut val_acc, mut test_loss, mut test_acc) = (vec![], vec![], vec![], vec![]);
    for e in events {
        match e {
            Event::Step { step, lr, lrs: group_lrs, momentum: m, loss, grad_norm, .. } => {
                let x = *step as f64;
                raw.push((x, *loss as f64));
                smooth.push((x, smoother.push(*loss as f64)));
                norm.push((x, *grad_norm as f64));
                momentum.push((x, *m));
                let all = group_lrs.clone().unwrap_or_else(|| vec![*lr]);
                lrs.resize(all.len().max(lrs.len()), Vec::new());
                for (g, v) in all.iter().enumerate() {
                    lrs[g].push((x, *v));
                }
            }
            Event::Val { step, val_loss: l, val_accuracy: a, .. } => {
                val_loss.push((*step as f64, *l));
                val_acc.push((*step as f64, 100.0 * a));
            }
            Event::Eval { step, test_loss: l, test_accuracy: a, .. } => {
                test_loss.push((*step as f64, *l));
                test_acc.push((*step as f64, 100.0 * a));
            }
            _ => {}
        }
    }
    let mut panels = vec![Panel {
        y_label: "batch loss".into(),
        series: vec![series("raw", raw), series(&format!("smoothed (β = {SMOOTHING})"), smooth)],
        weight: 3,
    }];
    // The lr and momentum hold for a whole step: stairs, so step schedules look like steps.
    let lr_series = if lrs.len() == 1 {
        vec![series("lr", stairs(lrs.remove(0)))]
    } else {
        lrs.into_iter().enumerate().map(|(g, p)| series(&format!("group {g}"), stairs(p))).collect()
    };
    panels.push(Panel { y_label: "learning rate".into(), series: lr_series, weight: 2 });
    panels.push(Panel {
        y_label: "momentum / β1".into(),
        series: vec![series("momentum", stairs(momentum))],
        weight: 1,
    });
    panels.push(Panel { y_label: "gradient norm".into(), series: vec![series("L2 norm", norm)], weight: 2 });
    let mut per_epoch = vec![];
    let mut acc = vec![];
    if !val_loss.is_empty() {
        per_epoch.push(series("validation", val_loss));
        acc.push(series("validation", val_acc));
    }
    if !test_loss.is_empty() {
        per_epoch.push(series("test", test_loss));
        acc.push(series("test", test_acc));
    }
    if !per_epoch.is_empty() {
        panels.push(Panel { y_label: "loss per epoch".into(), series: per_epoch, weight: 2 });
        panels.push(Panel { y_label: "accuracy per epoch (%)".into(), series: acc, weight: 2 });
    }
    Chart {
        title: title.into(),
        subtitle: Some("per optimizer step; validation and test after each epoch".into()),
        x_label: "step".into(),
        panels,
        size: (1100, 1300),
    }
}

/// Draw the run's curves to `path` (PNG or SVG), atomically.
pub fn draw(path: &Path, events: &[Event], title: &str) -> Result<()> {
    crate::plot::line_chart(path, &chart(events, title))
}
