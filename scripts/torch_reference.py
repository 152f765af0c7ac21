#!/usr/bin/env python3
"""The PyTorch reference for `mirrorburn bench --parts step`: the same bias-free VGG-16 (13 conv3x3
+ ReLU, 2x2 max pool after each block, one linear classifier, a bias only on the first conv,
He-normal weights), one synthetic batch, cross-entropy, backward and a plain SGD step (what the
GD mirror step is), timed as the median of --repeats steps after one warm-up.

    python3 scripts/torch_reference.py --width-divisors 1,8 --batch-size 100 --repeats 10

Prints one line per width: `torch <device> width 1/<k> batch <b>: <img/s> img/s (<ms> ms/step)`.
With --conv-layers, also a Markdown table per width of the convolution alone per VGG-16 layer
shape (forward, input gradient, weight gradient; median ms), rows keyed like
`mirrorburn bench --parts conv`: `| torch 1/<k> | <in>-<out>@<side> | <n> | fwd | dgrad | wgrad |`.
With --ops, also the step per op as `mirrorburn bench --parts ops` times it (each conv block
with its ReLU and pool, the classifier with the loss; forward, and forward + (out * r).sum()
backward less the forward and less that loss on a leaf; cores = process CPU time / wall time), rows
`| torch ops 1/<k> | <op> | fwd ms | bwd ms | cores fwd | cores fwd+bwd |`.
"""
import argparse
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("PyTorch is not installed: pip install torch (the CPU wheel suffices for --device cpu)")

PLAN = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class BiasFreeVgg(nn.Module):
    def __init__(self, width_divisor):
        super().__init__()
        layers, in_channels = [], 3
        for entry in PLAN:
            if entry == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out_channels = max(entry // width_divisor, 1)
            conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not layers)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
            layers += [conv, nn.ReLU(inplace=True)]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(in_channels, 10, bias=False)
        nn.init.kaiming_normal_(self.classifier.weight, nonlinearity="relu")

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_seconds(width_divisor, batch_size, repeats, device, lr=1e-3, mode="eager"):
    """Median seconds of one training step. `mode`: `eager` (plain fp32 eager), `tuned`
    (PyTorch's GPU defaults, cuDNN with TF32 convolutions, plus cudnn.benchmark), `bf16` (tuned,
    with bf16 autocast and channels_last)."""
    torch.manual_seed(0)
    if mode in ("tuned", "bf16"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = True
    model = BiasFreeVgg(width_divisor).to(device)
    images = torch.randn(batch_size, 3, 32, 32, device=device)
    labels = torch.randint(0, 10, (batch_size,), device=device)
    if mode == "bf16":
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode == "bf16")
    times = []
    # cudnn.benchmark tunes on the first steps: two warm-ups.
    warmups = 2 if mode != "eager" else 1
    for _ in range(repeats + warmups):
        sync(device)
        start = time.perf_counter()
        with autocast:
            loss = F.cross_entropy(model(images), labels)
        model.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p.sub_(lr * p.grad)
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmups:])


def conv_layer_shapes(width_divisor):
    """(in, out, side, count) of each run of equal conv layers of VGG-16, in order."""
    shapes, in_channels, side = [], 3, 32
    for entry in PLAN:
        if entry == "M":
            side //= 2
            continue
        out_channels = max(entry // width_divisor, 1)
        if shapes and shapes[-1][:3] == (in_channels, out_channels, side):
            shapes[-1] = (*shapes[-1][:3], shapes[-1][3] + 1)
        else:
            shapes.append((in_channels, out_channels, side, 1))
        in_channels = out_channels
    return shapes


def median_ms(repeats, device, work):
    times = []
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        work()
        sync(device)
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times[1:])


def conv_layer_rows(width_divisor, batch_size, repeats, device):
    torch.manual_seed(0)
    for cin, cout, side, count in conv_layer_shapes(width_divisor):
        x = torch.randn(batch_size, cin, side, side, device=device)
        w = torch.randn(cout, cin, 3, 3, device=device)
        g = torch.randn(batch_size, cout, side, side, device=device)
        with torch.no_grad():
            fwd = median_ms(repeats, device, lambda: F.conv2d(x, w, padding=1))
            dgrad = median_ms(repeats, device, lambda: torch.nn.grad.conv2d_input(x.shape, w, g, padding=1))
            wgrad = median_ms(repeats, device, lambda: torch.nn.grad.conv2d_weight(x, w.shape, g, padding=1))
        print(f"| torch 1/{width_divisor} | {cin}-{cout}@{side} | {count} | {fwd:.2f} | {dgrad:.2f} | {wgrad:.2f} |",
              flush=True)


def timed(repeats, device, work):
    """Median ms of `repeats` calls of `work` after a warm-up, and the cores busy over them."""
    work()
    sync(device)
    times, cpu, wall = [], time.process_time(), time.perf_counter()
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        sync(device)
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times), (time.process_time() - cpu) / (time.perf_counter() - wall)


def op_rows(width_divisor, batch_size, repeats, device):
    torch.manual_seed(0)
    plan = PLAN
    rows, in_channels, side, index = [], 3, 32, 0
    for position, entry in enumerate(plan):
        if entry == "M":
            side //= 2
            continue
        out_channels = max(entry // width_divisor, 1)
        pool = position + 1 < len(plan) and plan[position + 1] == "M"
        x = torch.randn(batch_size, in_channels, side, side, device=device, requires_grad=index > 0)
        w = torch.randn(out_channels, in_channels, 3, 3, device=device, requires_grad=True)
        b = torch.zeros(out_channels, device=device, requires_grad=True) if index == 0 else None

        def block():
            y = F.relu(F.conv2d(x, w, b, padding=1), inplace=True)
            return F.max_pool2d(y, 2) if pool else y

        r = torch.randn_like(block())
        fwd = timed(repeats, device, block)
        both = timed(repeats, device, lambda: (block() * r).sum().backward())
        leaf = torch.randn_like(r, requires_grad=True)
        loss = timed(repeats, device, lambda: (leaf * r).sum().backward())
        index += 1
        label = f"block {index} {in_channels}-{out_channels}@{side}" + (" +pool" if pool else "")
        rows.append((label, fwd, (both[0] - loss[0], both[1])))
        in_channels = out_channels
    features = torch.randn(batch_size, in_channels, device=device, requires_grad=True)
    weight = torch.randn(10, in_channels, device=device, requires_grad=True)
    labels = torch.arange(batch_size, device=device) % 10
    loss = lambda: F.cross_entropy(F.linear(features, weight), labels)
    rows.append(("linear + cross-entropy", timed(repeats, device, loss),
                 timed(repeats, device, lambda: loss().backward())))
    for label, (fwd, fwd_cores), (both, both_cores) in rows:
        print(f"| torch ops 1/{width_divisor} | {label} | {fwd:.2f} | {max(both - fwd, 0):.2f} | "
              f"{fwd_cores:.2f} | {both_cores:.2f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width-divisors", default="1,8")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--mode", default="eager", choices=["eager", "tuned", "bf16"],
                        help="eager fp32; tuned: cuDNN defaults (TF32 convolutions) + "
                             "cudnn.benchmark; bf16: tuned + bf16 autocast + channels_last")
    parser.add_argument("--conv-layers", action="store_true",
                        help="also time the convolution alone per VGG-16 layer shape")
    parser.add_argument("--ops", action="store_true",
                        help="also time the step per op (conv blocks, classifier with the loss)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for k in (int(w) for w in args.width_divisors.split(",")):
        seconds = step_seconds(k, args.batch_size, args.repeats, device, mode=args.mode)
        print(f"torch {device.type} width 1/{k} batch {args.batch_size}: "
              f"{args.batch_size / seconds:.1f} img/s ({1e3 * seconds:.1f} ms/step)", flush=True)
        if args.conv_layers:
            conv_layer_rows(k, args.batch_size, args.repeats, device)
        if args.ops:
            op_rows(k, args.batch_size, args.repeats, device)


if __name__ == "__main__":
    main()
