#!/usr/bin/env python3
"""Move a wgtrain checkpoint to PyTorch and back.

    python3 scripts/checkpoint_torch.py CHECKPOINT_DIR/step-NNNNNNNN OUT_DIR/step-NNNNNNNN

Loads the checkpoint's weights into an nn.Sequential built from its layer list (state.json "run.model") with
`load_state_dict`, builds the optimizer of state.json ("optimizer.config": SGD / Adam / AdamW with its parameter
groups) and loads the saved state with `optimizer.load_state_dict` (momentum_buffer, or exp_avg / exp_avg_sq /
max_exp_avg_sq and step, under PyTorch's state names), then writes both back as a wgtrain checkpoint: the two
safetensors files from `model.state_dict()` and `optimizer.state_dict()`, and state.json with the new files'
lengths and CRC-32s, so `wgtrain train --resume OUT_DIR` continues from what PyTorch holds.

Needs torch and safetensors (not needed by wgtrain's build or tests; not run in CI).
"""
import json
import os
import sys
import zlib
from collections import OrderedDict

import torch
from safetensors.torch import load_file, save_file


def build_model(spec, shapes):
    """nn.Sequential of the layer list, named as wgtrain names parameters (a layer's "name", else its index);
    input widths come from the saved weights' shapes."""
    layers = []
    for i, layer in enumerate(spec["layers"]):
        kind, name = layer["type"], layer.get("name") or str(i)
        if kind == "conv2d":
            out_c, in_c = shapes[f"{name}.weight"][:2]
            m = torch.nn.Conv2d(in_c, out_c, layer["kernel_size"], layer.get("stride", 1), layer.get("padding", 0),
                                bias=layer.get("bias", True))
        elif kind == "max_pool2d":
            m = torch.nn.MaxPool2d(layer["kernel_size"], layer.get("stride"))
        elif kind == "relu":
            m = torch.nn.ReLU()
        elif kind == "flatten":
            m = torch.nn.Flatten()
        elif kind == "linear":
            out_f, in_f = shapes[f"{name}.weight"]
            m = torch.nn.Linear(in_f, out_f, bias=layer.get("bias", True))
        else:
            raise SystemExit(f"unknown layer type {kind}")
        layers.append((name, m))
    return torch.nn.Sequential(OrderedDict(layers))


def build_optimizer(model, opt):
    cfg = opt["config"]
    base = cfg["base"]
    named = dict(model.named_parameters())
    groups = []
    for g, names in enumerate(opt["groups"]):
        spec = cfg["groups"][g] if g < len(cfg["groups"]) else {}
        group = {"params": [named[n] for n in names]}
        for key in ("lr", "weight_decay", "momentum", "dampening", "nesterov", "betas", "eps"):
            if key in spec:
                group[key] = tuple(spec[key]) if key == "betas" else spec[key]
        groups.append(group)
    kind = opt["kind"]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=base["lr"], momentum=base["momentum"], dampening=base["dampening"],
                               weight_decay=base["weight_decay"], nesterov=base["nesterov"])
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return cls(groups, lr=base["lr"], betas=tuple(base["betas"]), eps=base["eps"],
               weight_decay=base["weight_decay"], amsgrad=cfg["amsgrad"])


def main(src, dst):
    state = json.load(open(os.path.join(src, "state.json")))
    model = build_model(state["run"]["model"], dict(state["run"]["params"]))
    model.load_state_dict(load_file(os.path.join(src, "weights.safetensors")))

    opt = build_optimizer(model, state["optimizer"])
    saved = load_file(os.path.join(src, "optimizer.safetensors"))
    sd = opt.state_dict()
    index = {n: i for i, n in enumerate(p for g in state["optimizer"]["groups"] for p in g)}
    started = state["optimizer"]["momentum_started"]
    for g, names in enumerate(state["optimizer"]["groups"]):
        for n in names:
            entry = {}
            for key in ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"):
                if f"{n}.{key}" in saved and (key != "momentum_buffer" or started[g]):
                    entry[key] = saved[f"{n}.{key}"]
            if entry:
                sd["state"][index[n]] = entry
    opt.load_state_dict(sd)
    # The scheduler's lr and momentum in effect for the next step (state.json "scheduler.groups").
    for group, sched in zip(opt.param_groups, state["scheduler"]["groups"]):
        group["lr"] = float(sched["lr"])
        if sched.get("initial_lr") is not None:
            group["initial_lr"] = float(sched["initial_lr"])

    # ... train in PyTorch here ...

    os.makedirs(dst, exist_ok=True)
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, os.path.join(dst, "weights.safetensors"), metadata={"format": "pt"})
    tensors, steps = {}, state["optimizer"]["steps"]
    names = [p for g in state["optimizer"]["groups"] for p in g]
    for i, st in opt.state_dict()["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{names[i]}.{key}"] = value.detach().to(torch.float32).contiguous()
                if key == "step":
                    steps = int(value.item())
    kinds = {"sgd": ["momentum_buffer"], "adam": ["exp_avg", "exp_avg_sq"], "adamw": ["exp_avg", "exp_avg_sq"]}
    wanted = kinds[state["optimizer"]["kind"]] + (["max_exp_avg_sq"] if state["optimizer"]["config"]["amsgrad"] else [])
    for n, shape in state["run"]["params"]:  # wgtrain keeps every buffer (zeros where PyTorch has none yet)
        for key in wanted:
            tensors.setdefault(f"{n}.{key}", torch.zeros(shape))
    save_file(tensors, os.path.join(dst, "optimizer.safetensors"), metadata={"format": "pt", "step": str(steps)})
    state["optimizer"]["steps"] = steps
    for name in ("weights.safetensors", "optimizer.safetensors"):
        data = open(os.path.join(dst, name), "rb").read()
        state["files"][name] = {"bytes": len(data), "crc32": zlib.crc32(data)}
    json.dump(state, open(os.path.join(dst, "state.json"), "w"), indent=2)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
