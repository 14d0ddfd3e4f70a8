"""Train a course model from the command line, on one process or many (``torchrun``).

One process (CPU, one GPU)::

    python -m cnnbook.train --dataset cifar10 --model resnet20 --epochs 5 --limit 5000

Data parallel on one machine: ``torchrun`` starts one process per device and sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; ``fit`` joins the process group (``gloo`` on the
CPU, ``nccl`` on CUDA), wraps the model in DistributedDataParallel and gives each process
its shard of every epoch::

    torchrun --nproc-per-node 2 -m cnnbook.train --dataset cifar10 --model resnet20 --epochs 2
    torchrun --nproc-per-node gpu -m cnnbook.train --dataset cifar10 --model resnet56 \\
        --epochs 30 --batch-size 128 --lr 0.1 --scale-lr       # one process per GPU

Several machines (run the same command on each; ``--node-rank`` 0, 1, ... or let the
``c10d`` rendezvous assign ranks; ``HOST`` is one machine every node can reach)::

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29400 --rdzv-id cifar-run-1 \\
        -m cnnbook.train --dataset cifar10 --model resnet56 --epochs 30 --scale-lr

``--batch-size`` is per process: the *effective* batch is ``batch-size x world size``.
``--scale-lr`` applies the linear scaling rule (Goyal et al. 2017): ``lr x world size``,
so a bigger effective batch takes proportionally bigger steps (add warm-up for large
factors). Each process loads the dataset into its own memory (every rank needs the same
files: a shared ``CNNBOOK_DATA_MIRROR`` or cache). Rank 0 alone prints, writes the
checkpoint folder and the result record. If a process dies, the others stop with an error
after at most ``--timeout`` seconds instead of hanging; torchrun then ends the run.
"""
from __future__ import annotations

import argparse
import sys

MODELS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet9",
          "lenet5", "bn_lenet")


def build_model(name: str, num_classes: int, in_channels: int):
    """A course model for ``num_classes`` classes and ``in_channels`` input channels."""
    from cnnbook.models import cifar_resnet

    if name.startswith("resnet") and hasattr(cifar_resnet, name):
        return getattr(cifar_resnet, name)(num_classes=num_classes, in_channels=in_channels)
    if name == "lenet5":
        from cnnbook.models.lenet import lenet5
        return lenet5()
    if name == "bn_lenet":
        from cnnbook.models.batchnorm import bn_lenet
        return bn_lenet()
    from cnnbook.models import registry   # any other architecture: its ImageNet-size build

    try:
        return registry.get(name).build()
    except (KeyError, ValueError) as exc:
        raise SystemExit(f"unknown model {name!r}: use one of {', '.join(MODELS)} or a key of "
                         f"cnnbook.models.registry ({exc})") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cnnbook.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="cifar10", help="fashion_mnist, mnist or cifar10")
    p.add_argument("--model", default="resnet20", help=f"{', '.join(MODELS)}, or a registry key")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128, help="per process")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--scale-lr", action="store_true",
                   help="linear scaling rule: multiply lr by the number of processes")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"))
    p.add_argument("--schedule", default="onecycle", choices=("onecycle", "none"))
    p.add_argument("--precision", default="auto", choices=("fp32", "bf16", "fp16", "auto"))
    p.add_argument("--limit", type=int, default=None, help="class-balanced training subset")
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--resize", type=int, default=None)
    p.add_argument("--augment", action="store_true", help="random crops and flips")
    p.add_argument("--no-normalize", action="store_true")
    p.add_argument("--checkpoint", default=None, help="folder for last.pt/best.pt (resumes)")
    p.add_argument("--name", default=None, help="result record name (default: the model)")
    p.add_argument("--chapter", default="24")
    p.add_argument("--profile", default=None, help="result record profile (default: active)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds a collective waits for the other processes before failing")
    p.add_argument("--no-record", action="store_true", help="write no result record")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    import os

    if args.timeout is not None:
        os.environ["CNNBOOK_DIST_TIMEOUT"] = str(args.timeout)
    import torch

    from cnnbook.config import get_device, seed_everything
    from cnnbook.data.catalog import info
    from cnnbook.data.loader import load_data
    from cnnbook.train import schedules
    from cnnbook.train.distributed import env_world, init_process_group, is_main_process, world_size
    from cnnbook.train.loop import fit

    device = get_device()
    init_process_group(device)
    if device.type == "cuda":   # this process's own GPU (torchrun's LOCAL_RANK)
        device = torch.device("cuda", torch.cuda.current_device())
    world = world_size()
    seed_everything(args.seed)   # the same initial weights on every rank (DDP also broadcasts)
    ds = info(args.dataset)
    train_iter, test_iter = load_data(args.dataset, args.batch_size, resize=args.resize,
                                      limit=args.limit, test_limit=args.test_limit,
                                      normalize=not args.no_normalize, augment=args.augment,
                                      device=device, seed=args.seed)
    sample = next(iter(test_iter))[0]
    model = build_model(args.model, len(ds.classes), sample.shape[1])
    lr = args.lr * world if args.scale_lr else args.lr
    schedule = schedules.one_cycle(max_lr=lr) if args.schedule == "onecycle" else None
    if is_main_process():
        print(f"cnnbook.train: {args.model} on {args.dataset}, {world} process(es) "
              f"(rank/world/local from torchrun: {env_world()}), device {device}, "
              f"batch {args.batch_size}/process = {args.batch_size * world} effective, "
              f"lr {lr:g}{' (linear scaling)' if args.scale_lr else ''}", flush=True)
    result = fit(model, train_iter, test_iter, epochs=args.epochs, lr=lr,
                 optimizer=args.optimizer, momentum=args.momentum,
                 weight_decay=args.weight_decay, scheduler=schedule, precision=args.precision,
                 checkpoint=args.checkpoint, device=device, name=args.name or args.model,
                 chapter=args.chapter, profile=args.profile, record=not args.no_record,
                 progress=is_main_process() and sys.stderr.isatty(), live_plot=False,
                 extra={"world_size": world, "batch_per_process": args.batch_size})
    if is_main_process():
        print(result.history.round(4).to_string(index=False))
        print(f"test accuracy {result.test_acc}, {result.examples_per_sec:.0f} examples/s "
              f"over {world} process(es); record: {result.record_path}", flush=True)
    return result


if __name__ == "__main__":
    main()
