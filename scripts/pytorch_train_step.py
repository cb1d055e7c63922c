#!/usr/bin/env python3
"""The same training step as `crates/repopt-train/benches/train_step.rs`, in
PyTorch (CPU): forward, backward and update at batch 64 on 28x28 grey images,
for RepOpt-VGG (conv-BN-ReLU, RepOpt-SGD: gradient times a constant mask, then
decay, Nesterov momentum) and RepVGG (three branches, plain SGD) of the same
preset. Prints one JSON object: images per second of each model.

Usage: pytorch_train_step.py [--steps N] [--threads T] [--presets tiny,small]
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Must match crates/repopt-spec/src/presets.rs (blocks per stage, widths).
PRESETS = {
    "tiny": ([1, 1, 2, 2, 1], [16, 32, 64, 96, 128]),
    "small": ([1, 2, 3, 3, 1], [32, 48, 96, 128, 256]),
}
BATCH = 64


def layers(preset):
    blocks, widths = PRESETS[preset]
    cin = 1
    for nb, w in zip(blocks, widths):
        for b in range(nb):
            yield cin, w, 2 if b == 0 else 1
            cin = w


class Plain(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class RepVGGBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.dense = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))
        self.one = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))
        self.identity = nn.BatchNorm2d(cout) if cin == cout and stride == 1 else None

    def forward(self, x):
        y = self.dense(x) + self.one(x)
        if self.identity is not None:
            y = y + self.identity(x)
        return F.relu(y)


class Net(nn.Module):
    def __init__(self, preset, block):
        super().__init__()
        self.blocks = nn.Sequential(*[block(i, o, s) for i, o, s in layers(preset)])
        self.head = nn.Linear(PRESETS[preset][1][-1], 10)

    def forward(self, x):
        return self.head(self.blocks(x).mean((2, 3)))


def optimizer(net):
    decay = [p for n, p in net.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in net.named_parameters() if p.dim() <= 1]
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": 4e-5}, {"params": no_decay, "weight_decay": 0.0}],
        lr=0.01, momentum=0.9, nesterov=True)


def step_fn(net, masks):
    opt = optimizer(net)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y, label_smoothing=0.1)
        loss.backward()
        for p, m in masks:  # RepOpt-SGD: multiplier on the gradient only, decay added by SGD after
            p.grad.mul_(m)
        opt.step()

    return step


def images_per_second(step, steps):
    x = torch.randn(BATCH, 1, 28, 28)
    y = torch.arange(BATCH) % 10
    for _ in range(5):
        step(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    return steps * BATCH / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--presets", default="tiny,small")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    for preset in args.presets.split(","):
        repopt = Net(preset, Plain)
        masks = [(m.conv.weight, torch.rand_like(m.conv.weight) + 0.5) for m in repopt.blocks]
        result[f"repopt_vgg_{preset}_b{BATCH}"] = images_per_second(step_fn(repopt, masks), args.steps)
        repvgg = Net(preset, RepVGGBlock)
        result[f"repvgg_{preset}_b{BATCH}"] = images_per_second(step_fn(repvgg, []), args.steps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
