//! The fused SGD-momentum update through sgd.wgsl; hyper-parameters come from the per-step uniform.

use super::u;
use crate::gpu::buffer::Res;
use crate::gpu::kernels::Kernel;
use crate::gpu::params::ElemParams;
use crate::gpu::{GpuBackend, GpuTensor};
use crate::{Error, Result};

pub fn sgd_update(g: &mut GpuBackend, param: &mut GpuTensor, grad: &GpuTensor, buf: &mut GpuTensor) -> Result<()> {
    let n = param.numel();
    if grad.numel() != n || buf.numel() != n {
        return Err(Error::shape(
            "sgd_update",
            format!("`{}` has {n} elements, grad {} and momentum buffer {}", param.label, grad.numel(), buf.numel()),
        ));
    }
    let (pid, pbuf) = g.uniform(&ElemParams { len: u("sgd_update", n)?, ..Default::default() });
    let step_buf = g.step_res().buffer.clone();
    let step = Res { id: crate::gpu::STEP_ID, buffer: &step_buf };
    let groups = g.groups_1d(n);
    g.dispatch(
        Kernel::SgdUpdate,
        &[step, Res { id: pid, buffer: &pbuf }, param.res(), grad.res(), buf.res()],
        groups,
        &param.label,
    )
}
