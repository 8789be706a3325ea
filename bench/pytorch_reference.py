#!/usr/bin/env python3
"""PyTorch reference for `convbn bench`: the same models, shapes and training step in PyTorch
eager on CPU, in Train and Eval mode, in PyTorch's Tune mode and in Deploy mode.

A training step is what `convbn bench` measures: forward, `loss = logits.sum()`, backward (no
optimizer), every parameter trainable, BN statistics frozen (`model.eval()`) except in Train mode.

Modes
  train   torchvision model in `train()`: BN with batch statistics.
  eval    torchvision model in `eval()`: conv, then BN with running statistics.
  tune    PyTorch's Tune mode: each Conv->BN pair found by torch.fx runs MMCV's /
          torch's `efficient_conv_bn_eval` forward, W' = W * s and b' = (b - mean) * s + beta
          built with tensor ops every forward, then one conv. Autograd keeps X *and* W'.
  deploy  BN folded into the conv once (`torch.nn.utils.fusion.fuse_conv_bn_eval`).

Fields (the same as `convbn bench --format json`)
  saved_bytes     bytes of the tensors autograd saved for backward during the forward, each
                  storage counted once, parameter storage excluded
                  (`torch.autograd.graph.saved_tensors_hooks`)
  peak_rss_bytes  VmHWM of this process, reset after the model is built (includes the model)
  step_ms         wall-clock milliseconds of forward + backward

Usage
  pytorch_reference.py memory --model resnet50 --mode tune --batch 8 --size 224
      one process per mode: prints one JSON object with saved_bytes and peak_rss_bytes
  pytorch_reference.py serve --model resnet50 --modes eval,tune --batch 8 --size 224
      builds the models and answers lines `step MODE` on stdin with `{"mode":..,"ms":..}`
      (how `convbn bench --compare-pytorch` interleaves PyTorch's steps with its own);
      `quit` ends it
  pytorch_reference.py bench --model resnet50 --modes eval,tune,deploy --batch 8 --size 224
      stand-alone: memory in a child process per mode, then interleaved timed steps
  pytorch_reference.py kernels --batch 8 --size 224
      the forward, input-gradient and weight-gradient convolutions of every ResNet-50 layer
      shape, timed one by one (as `cargo run --release -p convbn --example conv_kernels`)
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def reset_peak_rss():
    """Start VmHWM afresh (Linux: writing 5 to clear_refs); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class TuneConvBn(nn.Module):
    """MMCV's `efficient_conv_bn_eval_forward`: fold on the fly with autograd-tracked ops."""

    def __init__(self, conv, bn):
        super().__init__()
        self.conv = conv
        self.bn = bn

    def forward(self, x):
        conv, bn = self.conv, self.bn
        weight = conv.weight
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_var)
        gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_var)
        coeff = gamma * torch.rsqrt(bn.running_var + bn.eps)
        weight_on_the_fly = weight * coeff.reshape([-1] + [1] * (weight.dim() - 1))
        bias_on_the_fly = beta + coeff * (bias - bn.running_mean)
        return conv._conv_forward(x, weight_on_the_fly, bias_on_the_fly)


def conv_bn_pairs(model):
    """Names of (conv, bn) modules where the conv's output feeds only the BN (torch.fx)."""
    graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.modules.batchnorm._BatchNorm):
            continue
        src = node.args[0]
        if (
            isinstance(src, torch.fx.Node)
            and src.op == "call_module"
            and isinstance(modules.get(src.target), nn.modules.conv._ConvNd)
            and len(src.users) == 1
        ):
            pairs.append((src.target, node.target))
    return pairs


def convert(model, mode):
    """Put `model` (already in eval()) into `mode`; returns the number of ConvBN pairs."""
    if mode == "train":
        model.train()
        return len(conv_bn_pairs(model))
    if mode == "eval":
        return len(conv_bn_pairs(model))
    pairs = conv_bn_pairs(model)
    for conv_name, bn_name in pairs:
        conv = model.get_submodule(conv_name)
        bn = model.get_submodule(bn_name)
        if mode == "tune":
            fused = TuneConvBn(conv, bn)
        elif mode == "deploy":
            fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
            fused.weight.requires_grad_(True)
            fused.bias.requires_grad_(True)
        else:
            raise SystemExit(f"unknown mode {mode!r}: use train, eval, tune or deploy")
        model.set_submodule(conv_name, nn.Identity())
        model.set_submodule(bn_name, fused)
    return len(pairs)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 as convbn's zoo builds it (crates/convbn-zoo/src/models/
    efficientnet_lite.rs; torchvision has no Lite model): MBConv blocks without
    squeeze-excitation, ReLU6, BN eps 1e-3, TensorFlow's static "SAME" padding (stride-2 layers
    pad (k-2)/2 before and k/2 after), 1x1 head to 1280, average pool, linear classifier."""

    # (kernel, stride, expansion, in, out, repeats)
    STAGES = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
              (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1)]

    @staticmethod
    def conv_bn(cin, cout, k, stride, groups, act):
        before, after = ((k - 1) // 2,) * 2 if stride == 1 else ((k - 2) // 2, k // 2)
        layers = [nn.ZeroPad2d((before, after, before, after)),
                  nn.Conv2d(cin, cout, k, stride, 0, groups=groups, bias=False),
                  nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)]
        return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)

    def __init__(self, num_classes=1000):
        super().__init__()
        cb = self.conv_bn
        self.stem = cb(3, 32, 3, 2, 1, True)
        blocks, self.residual = [], []
        for k, s, e, cin, cout, n in self.STAGES:
            for i in range(n):
                cin_i, stride = (cin, s) if i == 0 else (cout, 1)
                hidden = cin_i * e
                layers = [cb(cin_i, hidden, 1, 1, 1, True)] if e != 1 else []
                layers += [cb(hidden, hidden, k, stride, hidden, True), cb(hidden, cout, 1, 1, 1, False)]
                blocks.append(nn.Sequential(*layers))
                self.residual.append(stride == 1 and cin_i == cout)
        self.blocks = nn.ModuleList(blocks)
        self.head = cb(320, 1280, 1, 1, 1, True)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for block, residual in zip(self.blocks, self.residual):
            y = block(x)
            x = x + y if residual else y
        x = self.head(x).mean((2, 3))
        return self.fc(x)


def build(name, mode, seed=0):
    torch.manual_seed(seed)
    if name == "efficientnet_lite0":
        model = EfficientNetLite0(num_classes=1000).eval()
    else:
        try:
            ctor = getattr(torchvision.models, name)
        except AttributeError:
            raise SystemExit(f"torchvision has no model {name!r}")
        model = ctor(weights=None, num_classes=1000).eval()
    convert(model, mode)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def step(model, x):
    start = time.perf_counter()
    loss = model(x).sum()
    loss.backward()
    ms = (time.perf_counter() - start) * 1e3
    model.zero_grad(set_to_none=True)
    return ms


def saved_bytes(model, x):
    """Bytes autograd saves for backward in one forward, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in params:
            seen[ptr] = max(seen.get(ptr, 0), st.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(x).sum()
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def input_for(args):
    torch.manual_seed(1)
    return torch.randn(args.batch, 3, args.size, args.size)


def cmd_memory(args):
    model = build(args.model, args.mode)
    x = input_for(args)
    reset_peak_rss()
    step(model, x)  # warm-up
    out = {
        "model": args.model,
        "mode": args.mode,
        "batch": args.batch,
        "size": args.size,
        "saved_bytes": saved_bytes(model, x),
        "peak_rss_bytes": peak_rss_bytes(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print(json.dumps(out), flush=True)


def cmd_serve(args):
    modes = args.modes.split(",")
    models = {m: build(args.model, m) for m in modes}
    x = input_for(args)
    print(json.dumps({"ready": modes, "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] == "step" and len(words) == 2 and words[1] in models:
            print(json.dumps({"mode": words[1], "ms": step(models[words[1]], x)}), flush=True)
        else:
            print(json.dumps({"error": f"bad request {line.strip()!r}"}), flush=True)


def cmd_bench(args):
    modes = args.modes.split(",")
    rows = {}
    for m in modes:
        cmd = [sys.executable, __file__, "memory", "--model", args.model, "--mode", m,
               "--batch", str(args.batch), "--size", str(args.size)]
        rows[m] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    models = {m: build(args.model, m) for m in modes}
    x = input_for(args)
    times = {m: [] for m in modes}
    for i in range(args.steps + args.warmup):
        for m in modes:
            ms = step(models[m], x)
            if i >= args.warmup:
                times[m].append(ms)
    for m in modes:
        t = sorted(times[m])
        rows[m]["step_ms_median"] = t[len(t) // 2]
        rows[m]["step_ms"] = times[m]
        print(json.dumps(rows[m]))


# (count in ResNet-50, C_in, C_out, kernel, stride, input side at 224): as
# crates/convbn/examples/conv_kernels.rs.
RESNET50_CONVS = [
    (1, 3, 64, 7, 2, 224), (1, 64, 64, 1, 1, 56), (3, 64, 64, 3, 1, 56), (4, 64, 256, 1, 1, 56),
    (2, 256, 64, 1, 1, 56), (1, 256, 128, 1, 1, 56), (1, 128, 128, 3, 2, 56),
    (4, 128, 512, 1, 1, 28), (1, 256, 512, 1, 2, 56), (3, 512, 128, 1, 1, 28),
    (3, 128, 128, 3, 1, 28), (1, 512, 256, 1, 1, 28), (1, 256, 256, 3, 2, 28),
    (6, 256, 1024, 1, 1, 14), (1, 512, 1024, 1, 2, 28), (5, 1024, 256, 1, 1, 14),
    (5, 256, 256, 3, 1, 14), (1, 1024, 512, 1, 1, 14), (1, 512, 512, 3, 2, 14),
    (3, 512, 2048, 1, 1, 7), (1, 1024, 2048, 1, 2, 14), (2, 2048, 512, 1, 1, 7),
    (2, 512, 512, 3, 1, 7),
]


def cmd_kernels(args):
    """Forward, input-gradient and weight-gradient convolutions of every ResNet-50 shape."""

    def timed(f):
        f()
        start = time.perf_counter()
        for _ in range(3):
            f()
        return (time.perf_counter() - start) * 1e3 / 3

    totals = [0.0, 0.0, 0.0]
    print(f"{'n':>4} {'C_in':>5} {'C_out':>5} {'k':>2} {'s':>2} {'side':>4} | {'fwd ms':>9} {'dX ms':>9} {'dW ms':>9}")
    for count, cin, cout, k, stride, side224 in RESNET50_CONVS:
        side = side224 * args.size // 224
        x = torch.randn(args.batch, cin, side, side)
        w = torch.randn(cout, cin, k, k)
        y = F.conv2d(x, w, stride=stride, padding=k // 2)
        g = torch.randn_like(y)
        fwd = timed(lambda: F.conv2d(x, w, stride=stride, padding=k // 2))
        dx = timed(lambda: torch.nn.grad.conv2d_input(x.shape, w, g, stride=stride, padding=k // 2))
        dw = timed(lambda: torch.nn.grad.conv2d_weight(x, w.shape, g, stride=stride, padding=k // 2))
        for i, v in enumerate((fwd, dx, dw)):
            totals[i] += v * count
        print(f"{count:>4} {cin:>5} {cout:>5} {k:>2} {stride:>2} {side:>4} | {fwd:>9.2f} {dx:>9.2f} {dw:>9.2f}")
    print(
        f"ResNet-50 convolutions (x count), batch {args.batch}, {args.size}x{args.size}: "
        f"forward {totals[0]:.0f} ms, input gradient {totals[1]:.0f} ms, weight gradient {totals[2]:.0f} ms"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("memory", "serve", "bench", "kernels"):
        p = sub.add_parser(name)
        p.add_argument("--model", default="resnet50")
        p.add_argument("--batch", type=int, default=8)
        p.add_argument("--size", type=int, default=224)
        if name == "memory":
            p.add_argument("--mode", default="tune")
        else:
            p.add_argument("--modes", default="eval,tune")
        if name == "bench":
            p.add_argument("--steps", type=int, default=5)
            p.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    if os.environ.get("CONVBN_TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["CONVBN_TORCH_THREADS"]))
    {"memory": cmd_memory, "serve": cmd_serve, "bench": cmd_bench, "kernels": cmd_kernels}[args.cmd](args)


if __name__ == "__main__":
    main()
