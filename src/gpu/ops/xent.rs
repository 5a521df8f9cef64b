//! Softmax cross-entropy and evaluation counters through softmax_xent.wgsl (one workgroup: a batch; with a
//! member axis, one workgroup per member, z = member). Labels are shared by every member (row n of each
//! member's logits reads label n); slots are per member: member m writes `losses[m·mstride + slot]`, adds into
//! `acc`'s member m.

use super::{Role, check, mstride, rank, u};
use crate::gpu::bindings::{EvalAccumulate, SoftmaxXent};
use crate::gpu::buffer::Res;
use crate::gpu::cursor::Field;
use crate::gpu::kernels::{Family, KernelKey, Mode};
use crate::gpu::params::XentParams;
use crate::gpu::{GpuBackend, GpuIndices, GpuTensor};
use crate::{Error, Result};

fn params(op: &'static str, logits: &GpuTensor, labels: &GpuIndices) -> Result<XentParams> {
    rank(op, "logits", &logits.shape, 2)?;
    let (n, l) = (logits.shape[0], logits.shape[1]);
    if labels.len != n {
        return Err(Error::shape(op, format!("{} labels for {n} rows of logits", labels.len)));
    }
    if l == 0 && n > 0 {
        return Err(Error::shape(op, "logits have no classes"));
    }
    Ok(XentParams { n: u(op, n)?, l: u(op, l)?, ..Default::default() })
}

pub fn softmax_xent(
    g: &mut GpuBackend,
    logits: &GpuTensor,
    labels: &GpuIndices,
    dlogits: &mut GpuTensor,
    losses: &mut GpuTensor,
    slot: usize,
) -> Result<()> {
    let op = "softmax_xent";
    let mut p = params(op, logits, labels)?;
    check(op, "dlogits", &dlogits.shape, &logits.shape)?;
    let members = dlogits.members;
    p.logits_ms = mstride(op, "logits", logits, members, Role::Input)?;
    p.dlogits_ms = mstride(op, "dlogits", dlogits, members, Role::Own)?;
    p.out_ms = mstride(op, "losses", losses, members, Role::Own)?;
    // Checked here because the shader cannot report an out-of-range write.
    if slot >= losses.numel() {
        return Err(Error::shape(
            op,
            format!("loss slot {slot} but `{}` holds {} losses", losses.label, losses.numel()),
        ));
    }
    if p.n == 0 {
        return Ok(());
    }
    let (cid, cbuf) = g.cursor(Field::LossSlot, slot, op)?;
    let (pid, pbuf) = g.uniform(&p);
    let binds = SoftmaxXent {
        params: Res { id: pid, buffer: &pbuf },
        cursor: Res { id: cid, buffer: &cbuf },
        logits: logits.res(),
        labels: labels.res(),
        dlogits: dlogits.res(),
        losses: losses.res(),
    };
    let groups = [1, 1, u(op, members)?];
    g.dispatch(KernelKey::new(Family::SoftmaxXent, Mode::Forward), binds, groups, &dlogits.label)
}

pub fn eval_accumulate(g: &mut GpuBackend, logits: &GpuTensor, labels: &GpuIndices, acc: &mut GpuTensor) -> Result<()> {
    let op = "eval_accumulate";
    let mut p = params(op, logits, labels)?;
    check(op, "acc", &acc.shape, &[2])?;
    let members = acc.members;
    p.logits_ms = mstride(op, "logits", logits, members, Role::Input)?;
    p.out_ms = mstride(op, "acc", acc, members, Role::Own)?;
    if p.n == 0 {
        return Ok(());
    }
    let (pid, pbuf) = g.uniform(&p);
    let params = Res { id: pid, buffer: &pbuf };
    let binds = EvalAccumulate { params, logits: logits.res(), labels: labels.res(), acc: acc.res() };
    let groups = [1, 1, u(op, members)?];
    g.dispatch(KernelKey::new(Family::SoftmaxXent, Mode::Eval), binds, groups, &acc.label)
}
