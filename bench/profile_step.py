"""Where the time of one tiny training step goes, and how far it is from the compute floor.

Trains the config for real (its data loader, hooks and logging) for ``--warmup`` iterations, then
profiles ``--iters`` more twice: with cProfile, for the Python-side stages (cumulative time of the
functions that make each stage), and with torch.profiler, for the split of the backward pass by
autograd node. The floor: the step's FLOPs (forward and backward, counted by
``torch.utils.flop_counter``) over this machine's measured conv and matmul throughput.
Run on one thread, as a trial of a suite is (``resources: {CPU: 1}``). Usage:
    python bench/profile_step.py [--config experiments/configs/tiny/faster-rcnn_tiny_synth.py]
                                 [--warmup 20] [--iters 30] [--threads 1]
"""
import argparse
import cProfile
import os
import os.path as osp
import pstats
import tempfile
import time

STAGES = (  # (stage, (file suffix, function name) whose cumulative times add up)
    ('data loading and collation (wait in the loop)', (('dataloader.py', '__next__'), )),
    ('data preprocessor (pad, normalise)', (('data_preprocessor.py', 'forward'), )),
    ('backbone forward', (('resnet.py', 'forward'), )),
    ('FPN forward', (('fpn.py', 'forward'), )),
    ('RPN: head forward', (('rpn_head.py', 'forward_single'), )),
    ('RPN: anchors and target assignment', (('anchor_head.py', 'get_targets'),
                                            ('anchor_generator.py', 'grid_priors'))),
    ('RPN: proposals (decode, NMS)', (('base_dense_head.py', 'predict_by_feat'), )),
    ('RoI: assignment', (('max_iou_assigner.py', 'assign'), )),
    ('RoI: sampling', (('base_sampler.py', 'sample'), )),
    ('RoI: RoIAlign forward', (('single_level_roi_extractor.py', 'forward'), )),
    ('RoI: bbox head forward', (('convfc_bbox_head.py', 'forward'), )),
    ('RoI: targets and losses', (('bbox_head.py', 'loss_and_target'), )),
    ('backward', (('_tensor.py', 'backward'), )),
    ('optimizer (clip, step, zero)', (('optimizer_wrapper.py', 'step'),
                                      ('optimizer_wrapper.py', 'zero_grad'))),
    ('hooks: telemetry (prm_rga)', (('telemetry.py', 'after_train_iter'),
                                    ('finite_loss_hook.py', 'after_train_iter'))),
    ('hooks: logging, checkpoint, timer, scheduler',
     (('logger_hook.py', 'after_train_iter'), ('checkpoint_hook.py', 'after_train_iter'),
      ('iter_timer_hook.py', 'after_train_iter'), ('iter_timer_hook.py', 'before_train_iter'),
      ('param_scheduler_hook.py', 'after_train_iter'))),
)
BACKWARD = (  # autograd node name fragments, in the order they are matched
    ('convolutions (backbone, FPN, RPN)', ('Convolution', )),
    ('RoIAlign', ('RoIAlign', 'RoiAlign', 'roi_align')),
    ('fully connected (bbox heads)', ('Addmm', 'Mm', 'Linear')),
    ('batch norm', ('BatchNorm', )),
)


def parse_args():
    here = osp.dirname(osp.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=osp.join(
        here, '..', 'experiments', 'configs', 'tiny', 'faster-rcnn_tiny_synth.py'))
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--threads', type=int, default=1)
    return parser.parse_args()


class Window:
    """Calls ``start``/``stop`` around iterations [begin, end) of the training loop."""

    def __init__(self, begin, end, start, stop):
        self.begin, self.end, self.start, self.stop = begin, end, start, stop
        self.wall = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.begin:
            self.t0 = time.perf_counter()
            self.start()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.end:
            self.stop()
            self.wall = time.perf_counter() - self.t0


def train(cfg_path, windows, max_iters, flop_step=None):
    """Trains ``max_iters`` iterations of the config with ``windows`` hooked into the loop."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from prm_rga.train import check_data, load_config
    cfg = load_config(cfg_path)
    cfg.work_dir = tempfile.mkdtemp(prefix='profile_step_')
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10**9)
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0,
                                end=min(50, max_iters))]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**9, by_epoch=False)
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != 'EvalDumpHook']
    cfg.log_level = 'WARNING'
    check_data(cfg)
    runner = Runner.from_cfg(cfg)
    for window in windows:
        hook = type('WindowHook', (Hook, ), {
            'before_train_iter': window.before_train_iter,
            'after_train_iter': window.after_train_iter})()
        runner.register_hook(hook, priority='HIGHEST')
    runner.train()
    return runner


def stage_times(stats: pstats.Stats):
    """Cumulative seconds per stage, from the cProfile entries of its functions."""
    out = {}
    for stage, functions in STAGES:
        total = 0.0
        for (path, _, name), entry in stats.stats.items():
            if any(path.endswith(suffix) and name == fn for suffix, fn in functions):
                total += entry[3]  # cumulative time
        out[stage] = total
    return out


def backward_split(prof):
    """Seconds of the backward pass per group of autograd nodes (self + children CPU time)."""
    out = {name: 0.0 for name, _ in BACKWARD}
    out['other'] = 0.0
    for event in prof.key_averages():
        if not event.key.startswith('autograd::engine::evaluate_function: '):
            continue
        node = event.key.split(': ', 1)[1]
        group = next((name for name, parts in BACKWARD if any(p in node for p in parts)),
                     'other')
        out[group] += event.cpu_time_total / 1e6
    return out


def throughput(threads):
    """Measured GFLOP/s of this machine for the shapes that dominate the tiny model."""
    import torch
    torch.set_num_threads(threads)

    def rate(fn, flops, reps=20):
        fn()
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        return flops * reps / (time.perf_counter() - start) / 1e9

    a, b = torch.randn(1024, 1568), torch.randn(1568, 256)
    x, w = torch.randn(8, 32, 32, 32), torch.randn(32, 32, 3, 3)
    conv_flops = 2 * 8 * 32 * 32 * 32 * 32 * 9
    return {
        'matmul 1024x1568 @ 1568x256': rate(lambda: a @ b, 2 * 1024 * 1568 * 256),
        'conv 3x3, 32->32 ch, 8x32x32': rate(
            lambda: torch.nn.functional.conv2d(x, w, padding=1), conv_flops),
    }


def step_flops(runner):
    """FLOPs of one training step (forward + backward) on the next batch of the loader."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    model = runner.model
    model.train()
    data = next(iter(runner.train_dataloader))
    with FlopCounterMode(display=False) as counter:
        data = model.data_preprocessor(data, True)
        losses = model(**data, mode='loss')
        loss = sum(v.sum() if torch.is_tensor(v) else sum(x.sum() for x in v)
                   for k, v in losses.items() if 'loss' in k)
        loss.backward()
    return counter.get_total_flops(), len(data['data_samples'])


def main():
    args = parse_args()
    os.environ['OMP_NUM_THREADS'] = str(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    from torch.profiler import ProfilerActivity, profile

    import prm_rga  # noqa: F401
    from mmdet.utils import register_all_modules
    register_all_modules()

    profiler = cProfile.Profile()
    torch_prof = profile(activities=[ProfilerActivity.CPU])
    w, n = args.warmup, args.iters
    plain = Window(w, w + n, lambda: None, lambda: None)
    cprof = Window(w + n, w + 2 * n, profiler.enable, profiler.disable)
    tprof = Window(w + 2 * n, w + 3 * n, torch_prof.__enter__,
                   lambda: torch_prof.__exit__(None, None, None))
    runner = train(args.config, [plain, cprof, tprof], w + 3 * n)
    batch = runner.cfg.train_dataloader.batch_size

    stats = pstats.Stats(profiler)
    stages = stage_times(stats)
    profiled = cprof.wall
    print(f'config {osp.relpath(args.config)}, {args.threads} thread(s), batch {batch}')
    print(f'plain: {plain.wall / n * 1000:.0f} ms per step, {batch * n / plain.wall:.1f} '
          f'training images/s ({n} steps after {w} warm-up steps)')
    print(f'\ncProfile ({profiled / n * 1000:.0f} ms per step under the profiler); cumulative '
          'time per stage, share of the profiled step:')
    for stage, seconds in stages.items():
        print(f'  {stage:52} {seconds / n * 1000:7.1f} ms  {seconds / profiled:6.1%}')
    rest = profiled - sum(stages.values())
    print(f'  {"rest (loop, message hub, Python glue)":52} {rest / n * 1000:7.1f} ms  '
          f'{rest / profiled:6.1%}')
    split = backward_split(torch_prof)
    total = sum(split.values())
    print(f'\nbackward by autograd node (torch.profiler, {n} steps, '
          f'{total / n * 1000:.0f} ms per step):')
    for name, seconds in split.items():
        print(f'  {name:52} {seconds / n * 1000:7.1f} ms  {seconds / total:6.1%}')

    flops, images = step_flops(runner)
    rates = throughput(args.threads)
    print(f'\nfloor: {flops / 1e9:.2f} GFLOP per training step of {images} images '
          f'(forward + backward, {flops / images / 1e9:.3f} GFLOP per image)')
    for name, rate in rates.items():
        floor = flops / (rate * 1e9)
        print(f'  at {name}: {rate:6.1f} GFLOP/s -> {floor * 1000:6.1f} ms per step, '
              f'{plain.wall / n / floor:5.1f}x below the measured step')


if __name__ == '__main__':
    main()
