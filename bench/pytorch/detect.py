"""PyTorch reference for `cargo xtask bench --task detect --pytorch`: torchvision's Faster R-CNN
R-50 FPN (91 labels; ResNet-50 with frozen BatchNorm, stem and layer1 frozen, as torchvision
trains it from ImageNet weights and as our detector's `torchvision` preset is set) timed on the
same input size, batch and CPU threads as the Rust benchmark: the training step (forward, the
four losses, backward, SGD) and inference (eval mode, no autograd), median of the rounds after
the warm-up ones. Random images and random boxes from the seed. Prints JSON.

    python3 bench/pytorch/detect.py --size 320,480 --batch-size 2 --rounds 3 --warmup 1
"""
import argparse
import json
import statistics
import time

import torch
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops import FrozenBatchNorm2d


def model(height, width, classes):
    backbone = torchvision.models.resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(backbone, trainable_layers=3)
    # The images are the benchmark's size already: the transform leaves them as they are.
    return FasterRCNN(
        backbone, num_classes=classes, min_size=min(height, width), max_size=max(height, width)
    )


def targets(batch, height, width, objects, classes, generator):
    out = []
    for _ in range(batch):
        bw = 16 + torch.rand(objects, generator=generator) * (width / 2 - 16)
        bh = 16 + torch.rand(objects, generator=generator) * (height / 2 - 16)
        x = torch.rand(objects, generator=generator) * (width - bw)
        y = torch.rand(objects, generator=generator) * (height - bh)
        boxes = torch.stack([x, y, x + bw, y + bh], dim=1)
        labels = torch.randint(1, classes, (objects,), generator=generator)
        out.append({"boxes": boxes, "labels": labels})
    return out


def timed(fn, warmup, rounds):
    times = []
    for r in range(warmup + rounds):
        start = time.perf_counter()
        fn()
        if r >= warmup:
            times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "steps": times}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", default="800,1344")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--objects", type=int, default=7)
    p.add_argument("--classes", type=int, default=91)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    height, width = (int(v) for v in a.size.split(","))
    torch.manual_seed(a.seed)
    net = model(height, width, a.classes)
    generator = torch.Generator().manual_seed(a.seed)
    images = [torch.randn(3, height, width, generator=generator) for _ in range(a.batch_size)]
    truth = targets(a.batch_size, height, width, a.objects, a.classes, generator)
    optim = torch.optim.SGD([q for q in net.parameters() if q.requires_grad], lr=1e-4)

    def train():
        net.train()
        losses = net(images, truth)
        loss = sum(losses.values())
        optim.zero_grad()
        loss.backward()
        optim.step()
        float(loss.detach())

    def infer():
        net.eval()
        with torch.no_grad():
            out = net(images)
        float(out[0]["scores"].sum()) if len(out[0]["scores"]) else None

    print(
        json.dumps(
            {
                "framework": f"pytorch {torch.__version__}, torchvision {torchvision.__version__}",
                "device": f"cpu, {torch.get_num_threads()} threads",
                "parameters": sum(q.numel() for q in net.parameters()),
                "train": timed(train, a.warmup, a.rounds),
                "inference": timed(infer, a.warmup, a.rounds),
            }
        )
    )


if __name__ == "__main__":
    main()
