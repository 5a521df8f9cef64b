//! PyTorch trajectories for layer-list models, Adam/AdamW, parameter groups and gradient clipping
//! (tests/fixtures/trajectory2), reproduced by `wgtrain train --backend cpu`.
mod common;

#[test]
fn adamw_with_cosine_schedule() {
    common::check_trajectory2("public_adamw_cosine", &["--backend", "cpu"]);
}

#[test]
fn sgd_with_gradient_norm_clipping() {
    common::check_trajectory2("public_sgd_clip_norm", &["--backend", "cpu"]);
}

#[test]
fn lenet5_layer_list_with_step_schedule() {
    common::check_trajectory2("public_lenet_sgd", &["--backend", "cpu"]);
}

#[test]
fn mlp_adam_with_param_groups_and_one_cycle() {
    common::check_trajectory2("public_mlp_adam_groups", &["--backend", "cpu"]);
}
