"""PyTorch baseline for `wgtrain train`: the same sample CNN, recipe and batch size, eager mode, fp32.

    pip install torch numpy
    python scripts/pytorch_epoch.py DIR_WITH_MNIST_GZ --threads 2 --epochs 1 --batch-size 64 --lr 0.05 --momentum 0.9
    python scripts/pytorch_epoch.py DIR_WITH_MNIST_GZ --device cuda --epochs 3 --batch-size 128 --lr 0.05 --momentum 0.9
    python scripts/pytorch_epoch.py DIR_WITH_MNIST_GZ --threads 2 --limit-train 30000 --batch-size 64 --momentum 0.9 \
        --nesterov --weight-decay 5e-4 --one-cycle 0.05

`--one-cycle MAX_LR` is `OneCycleLR(max_lr=MAX_LR, total_steps=<steps of the run>, cycle_momentum=False)`
(the momentum stays at `--momentum`), stepped after every optimizer step, as wgtrain's
`--schedule '{"kind":"one_cycle","max_lr":MAX_LR,"total_steps":STEPS,"cycle_momentum":false}'`.
`--limit-train N` trains on the first N training images (file order), as wgtrain's `--limit-train N`.

Prints seconds per epoch, images/s and test accuracy, so it can be run side by side with
`wgtrain train --data DIR --backend cpu|gpu ...`. On CUDA the whole dataset lives on the GPU (as in wgtrain),
the clock stops after a synchronize, and `--no-tf32` turns off cuDNN's TF32 convolutions (on by default in
PyTorch; wgtrain computes in plain fp32).
"""
import argparse, gzip, struct, time
import torch, torch.nn as nn, torch.nn.functional as F


def idx(path):
    b = gzip.open(path).read()
    magic, n = struct.unpack(">II", b[:8])
    if magic == 0x803:
        r, c = struct.unpack(">II", b[8:16])
        return torch.frombuffer(bytearray(b[16:]), dtype=torch.uint8).view(n, 1, r, c)
    return torch.frombuffer(bytearray(b[8:]), dtype=torch.uint8).long()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1); self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.fc1 = nn.Linear(2304, 128); self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = torch.flatten(F.max_pool2d(F.max_pool2d(x, 2), 2), 1)
        return self.fc2(F.relu(self.fc1(x)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data"); ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1); ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05); ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0); ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-tf32", action="store_true")
    ap.add_argument("--nesterov", action="store_true"); ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--one-cycle", type=float, metavar="MAX_LR"); ap.add_argument("--limit-train", type=int)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
    if a.no_tf32:
        torch.backends.cudnn.allow_tf32 = False; torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    norm = lambda x: ((x.float() / 255.0) - 0.1307) / 0.3081
    load = lambda name: idx(f"{a.data}/{name}").to(dev)
    xtr, ytr = norm(load("train-images-idx3-ubyte.gz")), load("train-labels-idx1-ubyte.gz")
    xte, yte = norm(load("t10k-images-idx3-ubyte.gz")), load("t10k-labels-idx1-ubyte.gz")
    if a.limit_train:
        xtr, ytr = xtr[:a.limit_train], ytr[:a.limit_train]
    model = Net().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, nesterov=a.nesterov,
                          weight_decay=a.weight_decay)
    spe = len(ytr) // a.batch_size
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.one_cycle, total_steps=spe * a.epochs,
                                                 cycle_momentum=False) if a.one_cycle else None)
    for epoch in range(a.epochs):
        perm = torch.randperm(len(ytr), device=dev); sync(); t0 = time.perf_counter()
        for s in range(spe):
            i = perm[s * a.batch_size:(s + 1) * a.batch_size]
            loss = F.cross_entropy(model(xtr[i]), ytr[i])
            opt.zero_grad(); loss.backward(); opt.step()
            if sched: sched.step()
        sync(); dt = time.perf_counter() - t0
        with torch.no_grad():
            acc = sum((model(xte[j:j + 1000]).argmax(1) == yte[j:j + 1000]).sum().item() for j in range(0, len(yte), 1000)) / len(yte)
        print(f"epoch {epoch}: {dt:.1f} s, {spe * a.batch_size / dt:.0f} images/s, final loss {loss.item():.4f}, "
              f"test accuracy {100 * acc:.2f}% (torch {torch.__version__}, "
              f"{torch.cuda.get_device_name() if dev.type == 'cuda' else f'{a.threads} threads, {torch.backends.cpu.get_cpu_capability()}'}"
              f"{', TF32 off' if a.no_tf32 else ''})")


main()
