"""Cost of the training telemetry, as step-time ratios against the same training step without
it, measured in the same run (issue 3: telemetry every iteration <= 1.02x, gradient norms at
their default interval <= 1.05x).

One model (the PRM config, two heads: the most telemetry), one optimizer, one random batch
(bench_step's). The variants are interleaved step by step (plain, RoITelemetryHook,
GradNormHook measuring at every step; the order rotates), so drift in the machine's load hits all alike; each
time is the median over ``--iters`` rounds. A GradNormHook step at interval K costs
(K-1)/K plain steps plus 1/K measuring step, hence the ratio at K = 1 + (due/plain - 1)/K.
Usage:
    python bench/bench_telemetry.py [--scale tiny|paper] [--device cpu|cuda] [--iters 40]
"""
import argparse
import os.path as osp
import statistics
import sys
import time
from types import SimpleNamespace

sys.path.insert(0, osp.dirname(__file__))
from bench_step import CONFIGS, VARIANTS, make_batch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', choices=sorted(VARIANTS), default='tiny')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--iters', type=int, default=40)
    args = parser.parse_args()

    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    import prm_rga  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from prm_rga.telemetry import GradNormHook, RoITelemetryHook
    register_all_modules()

    pattern, size, batch = VARIANTS[args.scale]
    cfg = Config.fromfile(osp.join(CONFIGS, pattern.format('_prm')))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(args.device).train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    data = make_batch(size, batch, cfg.model.roi_head.bbox_head[0]['num_classes'])
    grad_hook = GradNormHook(interval=1)
    variants = {'plain': None, 'telemetry': RoITelemetryHook(), 'grad_norm_due': grad_hook}
    defaults = {h['type']: h.get('interval') for h in cfg.custom_hooks}

    times = {name: [] for name in variants}
    names = list(variants)
    for i in range(args.iters + 2):
        for name in names[i % 3:] + names[:i % 3]:  # rotated: no variant always goes first
            hook = variants[name]
            runner = SimpleNamespace(model=model, iter=i)
            if hook is not None:
                hook.before_train(runner)
                hook.before_train_iter(runner, i)
            start = time.perf_counter()
            model.train_step(data, optim)
            if args.device == 'cuda':
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
            if hook is not None:
                hook.after_train(runner)
    med = {name: statistics.median(t[2:]) for name, t in times.items()}  # 2 warm-up rounds

    plain = med['plain']
    due = med['grad_norm_due'] / plain
    print(f'{args.scale} scale, {pattern.format("_prm")}, {args.device}, {batch} images of '
          f'{size}x{size} px, median of {args.iters} interleaved rounds')
    print(f'plain step                        {plain:.4f} s')
    print(f'RoITelemetryHook (every step)     {med["telemetry"] / plain:.4f}x  (target <= 1.02)')
    print(f'GradNormHook, a measuring step    {due:.4f}x')
    for interval in sorted({50, defaults.get('GradNormHook') or 50}):
        print(f'GradNormHook, interval {interval:<3}        {1 + (due - 1) / interval:.4f}x'
              '  (target <= 1.05)')


if __name__ == '__main__':
    main()
