"""PyTorch reference for `cargo xtask bench --pytorch`: the same training step (forward,
cross-entropy, backward, SGD with momentum 0.9) and inference pass (eval mode, no autograd) of
the same variants, interleaved in rounds exactly as the Rust benchmark does, on a random batch,
and with --memory each variant's peak memory in a process of its own. Prints JSON.

    python3 bench/pytorch/bench.py --depth 56 --batch-size 32 --input 3,32,32 --rounds 10
    python3 bench/pytorch/bench.py --check   # the models against the NumPy reference fixtures
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import IMAGENET, ImageNetResNet, ResNet  # noqa: E402

VARIANTS = [  # name, attention, skip mode, skipped
    ("none", "none", "full", False),
    ("mrla-l", "mrla-l", "full", False),
    ("mrla-b", "mrla-b", "full", False),
    ("ela-full", "mrla-b", "full", True),
    ("ela-retrieval", "mrla-b", "retrieval", True),
]


def stage_blocks(arch, depth):
    return IMAGENET[depth][1] if arch == "imagenet" else [(depth - 2) // 9] * 3


def default_skips(arch, depth):
    """Every second non-first block of each stage, numbered over all blocks."""
    out, start = [], 0
    for n in stage_blocks(arch, depth):
        out += [start + j for j in range(n) if j % 2 == 1]
        start += n
    return out


def build_model(arch, depth, num_classes, attention, in_channels, mode):
    if arch == "imagenet":
        return ImageNetResNet(depth, num_classes, attention, in_channels=in_channels, mode=mode)
    return ResNet(depth, num_classes, attention, in_channels=in_channels, mode=mode)


def check():
    """Eval-mode logits of the reference weights against the NumPy reference's."""
    from safetensors.torch import load_file

    here = os.path.dirname(os.path.abspath(__file__))
    fx = os.path.join(here, "../../crates/ela-model/tests/fixtures")
    io = load_file(os.path.join(fx, "reference_io.safetensors"))
    worst = 0.0
    for weights, attention, cases in [
        ("mrla_b_r29", "mrla-b", [("mrla_b", None, "full"), ("ela_full", {1, 4}, "full"),
                                   ("ela_retrieval", {1, 4}, "retrieval")]),
        ("mrla_l_r29", "mrla-l", [("mrla_l", None, "full")]),
    ]:
        sd = load_file(os.path.join(fx, weights + ".safetensors"))
        for name, skipped, mode in cases:
            model = ResNet(29, 10, attention, mode=mode)
            model.load_state_dict(sd, strict=False)
            missing = set(model.state_dict()) - set(sd)
            assert all(k.endswith("num_batches_tracked") for k in missing), missing
            model.set_skips(skipped or set())
            model.eval()
            with torch.no_grad():
                got = model(io["input"])
            diff = (got - io[name]).abs().max().item()
            worst = max(worst, diff)
            print(f"{name}: max |diff| {diff:.2e}")
    assert worst < 1e-4, worst
    print("the PyTorch models match the NumPy reference")
    # The ImageNet models have no reference outputs; their structure is checked by parameter
    # count against `ela summary --arch imagenet --depth D --attention A --num-classes 1000`
    # (ResNet-50 plain: SPEC section 1).
    for depth, attention, expected in [
        (18, "none", 11_689_512), (18, "mrla-l", 11_712_624), (18, "mrla-b", 11_729_936),
        (50, "none", 25_557_032), (50, "mrla-l", 25_738_452), (50, "mrla-b", 25_742_580),
    ]:
        got = sum(p.numel() for p in ImageNetResNet(depth, 1000, attention).parameters())
        assert got == expected, (depth, attention, got, expected)
    print("the ImageNet models have ela's parameter counts")


def retrieval(a):
    """MRLA-B retrieval as the official code computes it: concatenate the stage's keys and value
    maps, softmax over them, weighted sum. Forward, and forward + backward, per memory length."""
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    b, c, s, d = a.batch_size, a.channels, a.size, 16
    g = c // d
    q = torch.randn(b, 1, c, device=dev, requires_grad=True)
    keys = [torch.randn(b, 1, c, device=dev, requires_grad=True) for _ in range(a.max_entries)]
    values = [torch.randn(b, c, s, s, device=dev, requires_grad=True) for _ in range(a.max_entries)]

    def once(t, backward):
        sync()
        start = time.perf_counter()
        K = torch.cat([k.view(b, g, 1, d) for k in keys[:t]], 2)
        V = torch.cat([v.view(b, g, 1, d * s * s) for v in values[:t]], 2)
        att = torch.softmax(q.view(b, g, 1, d) @ K.transpose(-1, -2) / d ** 0.5, -1)
        total = (att @ V).sum()
        if backward:
            total.backward()
        total.item()
        sync()
        return time.perf_counter() - start

    for t in range(1, a.max_entries + 1):
        once(t, True)
    fwd = [[] for _ in range(a.max_entries)]
    both = [[] for _ in range(a.max_entries)]
    for _ in range(a.reps):
        for t in range(1, a.max_entries + 1):
            fwd[t - 1].append(once(t, False))
            both[t - 1].append(once(t, True))
    print(json.dumps([
        {"entries": t + 1, "forward_seconds": statistics.median(fwd[t]),
         "forward_backward_seconds": statistics.median(both[t])}
        for t in range(a.max_entries)
    ]))


def value_map(a):
    """One block's depthwise 3x3 value map, as `ela bench-retrieval` times it: forward, and forward
    + backward (loss sum(v^2)) with gradients for input and weights, input only, weights only."""
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    b, c, s = a.batch_size, a.channels, a.size
    conv = torch.nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False).to(dev)
    x0 = torch.randn(b, c, s, s, device=dev)

    def once(inp, weights, backward):
        x = x0.clone().requires_grad_(inp)
        conv.weight.requires_grad_(weights)
        conv.weight.grad = None
        sync()
        start = time.perf_counter()
        v = conv(x)
        total = (v * v).sum()
        if backward:
            total.backward()
        total.item()
        sync()
        return time.perf_counter() - start

    cases = [(True, True, False), (True, True, True), (True, False, True), (False, True, True)]
    for case in cases:
        once(*case)
    times = [[] for _ in cases]
    for _ in range(a.reps):
        for i, case in enumerate(cases):
            times[i].append(once(*case))
    m = [statistics.median(t) for t in times]
    print(json.dumps({"forward_seconds": m[0], "forward_backward_seconds": m[1],
                      "input_gradient_seconds": m[2], "weight_gradient_seconds": m[3]}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", choices=["cifar", "imagenet"], default="cifar")
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input", default="3,32,32")
    p.add_argument("--num-classes", type=int, default=100)
    p.add_argument("--skip", default=None)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--check", action="store_true")
    p.add_argument("--memory", action="store_true", help="peak memory per variant, each in a process of its own")
    p.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    p.add_argument("--retrieval", action="store_true", help="one block's retrieval for t = 1..--max-entries")
    p.add_argument("--value-map", action="store_true", help="one block's depthwise value map, forward and backward")
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--max-entries", type=int, default=18)
    p.add_argument("--reps", type=int, default=10)
    a = p.parse_args()
    if a.check:
        return check()
    if a.retrieval:
        return retrieval(a)
    if a.value_map:
        return value_map(a)
    c, h, w = (int(v) for v in a.input.split(","))
    skipped = [int(v) for v in a.skip.split(",")] if a.skip else default_skips(a.arch, a.depth)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def build(name, attention, mode, skips):
        torch.manual_seed(a.seed)
        model = build_model(a.arch, a.depth, a.num_classes, attention, c, mode).to(dev).train()
        model.set_skips(set(skipped) if skips else set())
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        return name, model, opt

    torch.manual_seed(a.seed)
    x = torch.randn(a.batch_size, c, h, w, device=dev)
    y = torch.arange(a.batch_size, device=dev) % a.num_classes

    def step(model, opt):
        sync()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        sync()
        return time.perf_counter() - start

    def infer(model):
        model.eval()
        sync()
        start = time.perf_counter()
        with torch.no_grad():
            model(x).sum().item()
        sync()
        elapsed = time.perf_counter() - start
        model.train()
        return elapsed

    if a.memory_of:
        return print(json.dumps(memory_of(a, dev, [v for v in VARIANTS if v[0] == a.memory_of][0],
                                          build, step, infer)))

    runs = [build(*v) for v in VARIANTS]
    for _, model, opt in runs:
        for _ in range(a.warmup):
            step(model, opt)
        infer(model)
    train = [[] for _ in runs]
    inference = [[] for _ in runs]
    for r in range(a.rounds):
        for k in range(len(runs)):
            i = (k + r) % len(runs)
            train[i].append(step(runs[i][1], runs[i][2]))
        for k in range(len(runs)):
            i = (k + r) % len(runs)
            inference[i].append(infer(runs[i][1]))
    names = [n for n, *_ in runs]
    memory = {}
    if a.memory:
        for n in names:
            cmd = [sys.executable, os.path.abspath(__file__), "--memory-of", n] + [
                arg for flag in ("arch", "depth", "batch_size", "input", "num_classes", "skip", "seed", "device")
                for arg in ("--" + flag.replace("_", "-"), str(getattr(a, flag)))
                if getattr(a, flag) is not None
            ]
            memory[n] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    out = {
        "framework": f"pytorch {torch.__version__}",
        "device": str(dev) if dev.type != "cpu" else f"cpu ({torch.get_num_threads()} threads)",
        "variants": [
            dict(name=n, train=timing(train, i), inference=timing(inference, i),
                 **({"memory": memory[n]} if n in memory else {}))
            for i, n in enumerate(names)
        ],
    }
    print(json.dumps(out))


def timing(times, i):
    """The Rust benchmark's `Timing` of variant i: median, spread, per-round ratios."""
    plain, ref = 0, [v[0] for v in VARIANTS].index("mrla-b")
    t = times[i]
    return {
        "median_seconds": statistics.median(t),
        "min_seconds": min(t),
        "max_seconds": max(t),
        "ratio_to_plain": statistics.median([u / v for u, v in zip(t, times[plain])]),
        "ratio_to_mrla_b": statistics.median([u / v for u, v in zip(t, times[ref])]),
        "seconds": t,
    }


def proc_status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_of(a, dev, variant, build, step, infer):
    """Peak memory of one variant, in a process that runs nothing else, measured as the Rust
    benchmark measures it: on the CPU the resident set (VmHWM above the VmRSS once the model, its
    optimizer and the batch exist); on CUDA the bytes the caching allocator reserves (its peak
    above its resting reservation), as Burn's pools report theirs."""
    _, model, opt = build(*variant)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        kind, resting = "device-reserved", torch.cuda.memory_reserved(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        peak = lambda: torch.cuda.max_memory_reserved(dev)  # noqa: E731
    else:
        kind, resting = "resident", proc_status_bytes("VmRSS")
        peak = lambda: proc_status_bytes("VmHWM")  # noqa: E731
    infer(model)
    inference = max(0, peak() - resting)
    step(model, opt)
    step(model, opt)
    train = max(0, peak() - resting)
    return {"kind": kind, "resting_bytes": resting, "inference_bytes": inference, "train_bytes": train}


if __name__ == "__main__":
    main()
