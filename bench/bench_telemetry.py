"""Cost of the training telemetry, as step-time ratios against the same training step without
it, measured in the same run (issue 3: telemetry every iteration <= 1.02x, gradient norms at
their default interval <= 1.05x).

One model (the PRM config, two heads: the most telemetry), one optimizer, one random batch
(bench_step's). The variants are interleaved step by step (plain, RoITelemetryHook,
GradNormHook measuring at every step; the order rotates), and each ratio is the median over
``--iters`` rounds of that round's step time over the round's plain step, so drift in the
machine's load hits both sides alike. On CPU the time is the process's CPU time with one torch
thread (a shared machine's load does not enter it; wall-clock ratios are printed beside it);
on CUDA it is wall-clock time after a synchronize. A GradNormHook step at interval K costs
(K-1)/K plain steps plus 1/K measuring step, hence the ratio at K = 1 + (due/plain - 1)/K.
Usage:
    python bench/bench_telemetry.py [--scale tiny|paper] [--device cpu|cuda] [--iters 20]
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
    parser.add_argument('--iters', type=int, default=20)
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

    if args.device == 'cpu':
        torch.set_num_threads(1)
    cpu = {name: [] for name in variants}
    wall = {name: [] for name in variants}
    names = list(variants)
    for i in range(args.iters + 2):
        for name in names[i % 3:] + names[:i % 3]:  # rotated: no variant always goes first
            hook = variants[name]
            runner = SimpleNamespace(model=model, iter=i)
            if hook is not None:
                hook.before_train(runner)
                hook.before_train_iter(runner, i)
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            model.train_step(data, optim)
            if args.device == 'cuda':
                torch.cuda.synchronize()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start_wall)
            if hook is not None:
                hook.after_train(runner)

    def ratio(times, name):  # median over rounds of the paired ratio; 2 warm-up rounds
        return statistics.median(t / p for t, p in zip(times[name][2:], times['plain'][2:]))

    main_times = wall if args.device == 'cuda' else cpu
    clock = 'wall-clock' if args.device == 'cuda' else 'CPU time, 1 thread'
    due = ratio(main_times, 'grad_norm_due')
    print(f'{args.scale} scale, {pattern.format("_prm")}, {args.device}, {batch} images of '
          f'{size}x{size} px, median of {args.iters} interleaved rounds, {clock}')
    print(f'plain step                        {statistics.median(main_times["plain"][2:]):.4f} s')
    print(f'RoITelemetryHook (every step)     {ratio(main_times, "telemetry"):.4f}x  '
          f'(target <= 1.02; wall-clock {ratio(wall, "telemetry"):.4f}x)')
    print(f'GradNormHook, a measuring step    {due:.4f}x  '
          f'(wall-clock {ratio(wall, "grad_norm_due"):.4f}x)')
    for interval in sorted({50, defaults.get('GradNormHook') or 50}):
        print(f'GradNormHook, interval {interval:<3}        {1 + (due - 1) / interval:.4f}x'
              '  (target <= 1.05)')

if __name__ == '__main__':
    main()
