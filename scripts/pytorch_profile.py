"""Where a PyTorch CPU training step of the sample CNN spends its time, for comparison with
`cargo run --release --example profile_cpu` (wgtrain's CPU backend, the same step op by op).

    python scripts/pytorch_profile.py [--threads 2] [--batch-size 64] [--steps 50]

Random inputs (the time does not depend on the values); SGD lr 0.05 momentum 0.9 as in scripts/pytorch_epoch.py.
Prints the step time without the profiler, then torch.profiler's table by self CPU time.
"""
import argparse, time
import torch, torch.nn as nn, torch.nn.functional as F
from torch.profiler import profile, ProfilerActivity


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
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    model = Net(); opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(a.batch_size, 1, 28, 28); y = torch.randint(0, 10, (a.batch_size,))

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()

    for _ in range(10):
        step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = (time.perf_counter() - t) / a.steps
    print(f"batch {a.batch_size}: {dt * 1e3:.2f} ms/step, {a.batch_size / dt:.0f} images/s "
          f"(torch {torch.__version__}, {a.threads} threads)")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(a.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


main()
