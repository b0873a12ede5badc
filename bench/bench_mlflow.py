"""MLflow logging overhead per tiny training iteration (issue 4: at most 2% of a tiny step).

Baseline and logging cost are measured in the same run:
1. step: the tiny RGA+PRM config trains --iters iterations on the synthetic set (1 CPU thread,
   as a 1-CPU trial gets) with the MLflow backend logging every iteration; the step time is
   the median of mmengine's per-iteration `time`.
2. logging: the backend alone receives, --schedule times, the training tag LoggerHook sent in
   step 1 (same keys) into a fresh run, then closes (every point delivered to the store). Its
   cost per iteration is the process CPU time (main thread and flusher thread) over the
   schedule, including creating the client, divided by --schedule, and the time the training
   thread spends in `add_scalars` alone.
overhead = logging / step. Usage:
    python bench/bench_mlflow.py [--iters 30] [--schedule 1200] [--tracking-uri URI]
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..')
sys.path.insert(0, ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=30, help='training iterations timed')
    parser.add_argument('--schedule', type=int, default=1200,
                        help='iterations logged (1200 = the tiny 1x schedule)')
    parser.add_argument('--tracking-uri', help='default: a SQLite store in a temp dir')
    args = parser.parse_args()
    import torch
    torch.set_num_threads(1)
    from mlflow import MlflowClient
    from mmengine.config import Config

    import prm_rga  # noqa: F401
    from experiments import tracking
    from experiments.tracking import MlflowRunBackend
    from prm_rga.datasets import make_synth
    from prm_rga.train import make_runner

    tmp = tempfile.mkdtemp(prefix='bench_mlflow_')
    uri = args.tracking_uri or f'sqlite:///{tmp}/mlflow.db'
    tracking.check_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = tracking.get_or_create_experiment(client, 'bench_mlflow', uri)
    synth = osp.join(tmp, 'synth')
    batch = 8
    make_synth(synth, seed=0, num_train=args.iters * batch, num_val=8)
    os.environ['PRM_RGA_SYNTH'] = synth  # the tiny configs' data root
    cfg = Config.fromfile(osp.join(ROOT, 'experiments/configs/tiny/faster-rcnn_tiny_rga-prm_synth.py'))
    run_id = client.create_run(experiment, run_name='training').info.run_id
    cfg.merge_from_dict({
        'synth_data.num_train': args.iters * batch, 'synth_data.num_val': 8,
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        'train_dataloader.batch_size': batch, 'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 10, 'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 10, 'log_processor.window_size': 1,
        'visualizer.vis_backends': [
            dict(type='LocalVisBackend'),
            dict(type='MlflowRunBackend', tracking_uri=uri, run_id=run_id)]})
    cfg.work_dir = osp.join(tmp, 'work')
    runner = make_runner(cfg, argparse.Namespace(work_dir=cfg.work_dir, config=''))
    runner.train()
    (log, ) = [osp.join(r, f) for r, _, fs in os.walk(cfg.work_dir) for f in fs
               if f == 'scalars.json']
    rows = [json.loads(line) for line in open(log) if '"loss"' in line]
    step = statistics.median(row['time'] for row in rows[2:])  # skip warm-up iterations
    tag = {k: v for k, v in rows[-1].items() if k not in ('step', )}

    run_id = client.create_run(experiment, run_name='logging').info.run_id
    cpu0, in_call = time.process_time(), 0.0
    backend = MlflowRunBackend(tracking_uri=uri, run_id=run_id, flush_interval=5.0)
    for i in range(args.schedule):
        t = time.perf_counter()
        backend.add_scalars(tag, step=i + 1)
        in_call += time.perf_counter() - t
    backend.close()
    cpu = (time.process_time() - cpu0) / args.schedule
    logged = len(client.get_metric_history(run_id, 'train/loss'))
    assert logged == args.schedule, logged
    print(f'store: {uri}')
    print(f'tiny RGA+PRM step (1 thread, batch {batch}): {step * 1000:.1f} ms (median of '
          f'{len(rows) - 2} iterations)')
    print(f'logging {len(tag)} scalars per iteration, {args.schedule} iterations: '
          f'{cpu * 1000:.3f} ms CPU per iteration (training thread in add_scalars: '
          f'{in_call / args.schedule * 1000:.3f} ms)')
    print(f'overhead: {cpu / step:.2%} of a step (target <= 2%); training thread '
          f'{in_call / args.schedule / step:.3%}')


if __name__ == '__main__':
    main()
