"""Step time and peak memory of baseline vs PRM vs RGA vs RGA+PRM, training and inference,
as ratios against the baseline measured in the same run (issue: PRM train <= 1.10x, PRM
inference <= 1.03x, RGA <= 1.01x). At tiny scale also the tiny configs as they were before the
converged embedded default (BEFORE: 128 RoIs per head and image, every backbone stage and BN
trained), against today's.

Each variant runs in its own process (so peak memory is its own) on the same random batch:
images of --size px with a COCO-like number of boxes. The paper scale builds the R50-FPN
configs without pretrained weights (timing does not depend on them). Peak memory is the
process's RSS on CPU and torch's peak allocation on CUDA. Usage:
    python bench/bench_step.py [--scale tiny|paper] [--device cpu|cuda] [--iters 20]
                               [--size 128] [--batch 8]
"""
import argparse
import json
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time

CONFIGS = osp.join(osp.dirname(__file__), '..', 'experiments', 'configs')
VARIANTS = {
    'tiny': ('tiny/faster-rcnn_tiny{}_synth.py', 128, 8),
    'paper': ('faster_rcnn/faster-rcnn_r50_fpn{}_1x_coco.py', 800, 2),
}
NAMES = {'baseline': '', 'PRM': '_prm', 'RGA': '_rga', 'RGA+PRM': '_rga-prm'}
BEFORE_NAMES = {'baseline, before': '', 'PRM, before': '_prm'}


def before(cfg) -> None:
    """The tiny config as it was before issue 16 (what it computes per step)."""
    rcnn = cfg.model.train_cfg.rcnn
    for head in rcnn if isinstance(rcnn, list) else [rcnn]:
        head.sampler.num = 128
    cfg.model.backbone.update(frozen_stages=-1, norm_eval=False)


def make_batch(size: int, batch: int, num_classes: int):
    import torch
    from mmengine.structures import InstanceData
    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i in range(batch):
        n = int(torch.randint(1, 12, (1, ), generator=g))
        xy = torch.rand(n, 2, generator=g) * size * 0.7
        wh = 8 + torch.rand(n, 2, generator=g) * size * 0.3
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0), img_id=i))
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, (xy + wh).clamp(max=size - 1)], 1),
            labels=torch.randint(0, num_classes, (n, ), generator=g))
        inputs.append(torch.randint(0, 255, (3, size, size), dtype=torch.uint8, generator=g))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def worker(config: str, iters: int, size: int, batch: int, device: str, old: bool) -> dict:
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    import prm_rga  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    if old:
        before(cfg)
    cfg.model.backbone.init_cfg = None
    # inference as deployed: the ensemble only, not each head alone as the tracked val does
    cfg.model.roi_head.pop('predict_each_head', None)
    # the same initial weights in every variant: an untrained RPN's proposals (and so the
    # work of the heads and NMS) depend on them
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device)
    # lr 0: every timed step sees those same weights (the update is still computed), else the
    # variants' first steps (RGA's x7 head gradients) lead to models of different cost
    cfg.optim_wrapper.optimizer.lr = 0.0
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    optim.initialize_count_status(model, 0, 10 * iters)
    heads = cfg.model.roi_head.bbox_head
    num_classes = (heads[0] if isinstance(heads, list) else heads)['num_classes']
    data = make_batch(size, batch, num_classes)

    def timed(fn):
        times = []
        for i in range(iters + 2):
            start = time.perf_counter()
            fn()
            if device == 'cuda':
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return statistics.median(times[2:])  # the first two warm up

    model.train()
    train_s = timed(lambda: model.train_step(data, optim))
    model.eval()
    with torch.no_grad():
        test_s = timed(lambda: model.test_step(data))
    if device == 'cuda':
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(train_s=train_s, test_s=test_s, peak_mb=peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', choices=sorted(VARIANTS), default='tiny')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--size', type=int, help='image side (default: 128 tiny, 800 paper)')
    parser.add_argument('--batch', type=int, help='images per step (default: 8 tiny, 2 paper)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--before', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    pattern, size, batch = VARIANTS[args.scale]
    size, batch = args.size or size, args.batch or batch
    if args.worker:
        print(json.dumps(worker(args.worker, args.iters, size, batch, args.device,
                                args.before)))
        return
    results = {}
    runs = [(name, suffix, False) for name, suffix in NAMES.items()]
    if args.scale == 'tiny':
        runs += [(name, suffix, True) for name, suffix in BEFORE_NAMES.items()]
    for name, suffix, old in runs:
        config = osp.join(CONFIGS, pattern.format(suffix))
        out = subprocess.run(
            [sys.executable, __file__, '--worker', config, '--scale', args.scale,
             '--device', args.device, '--iters', str(args.iters), '--size', str(size),
             '--batch', str(batch)] + (['--before'] if old else []),
            check=True, capture_output=True, text=True).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
    base = results['baseline']
    print(f'{args.scale} scale on {args.device}, {batch} images of {size}x{size} px, '
          f'median of {args.iters} steps')
    print(f'{"variant":16} {"train img/s":>11} {"t/base":>7} {"test img/s":>10} {"t/base":>7} '
          f'{"peak MB":>8} {"m/base":>7}')
    for name, r in results.items():
        print(f'{name:16} {batch / r["train_s"]:11.1f} {r["train_s"] / base["train_s"]:7.3f} '
              f'{batch / r["test_s"]:10.1f} {r["test_s"] / base["test_s"]:7.3f} '
              f'{r["peak_mb"]:8.0f} {r["peak_mb"] / base["peak_mb"]:7.3f}')
    for name in BEFORE_NAMES if args.scale == 'tiny' else ():
        now = results[name.split(',')[0]]
        print(f'{name.split(",")[0]}: today\'s tiny config trains '
              f'{results[name]["train_s"] / now["train_s"]:.2f}x the images/s of before')


if __name__ == '__main__':
    main()
