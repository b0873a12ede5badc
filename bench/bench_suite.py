"""Suite efficiency: the wall time of a suite of n short tiny trials run by `prm-rga suite run`
(private local Ray, SQLite MLflow) against the sum of the same trials' solo times divided by
the concurrency (issue 4: efficiency >= 0.9 on 2 cores).

Solo time of a trial = wall time of `prm-rga train` on its exact config (dumped from the
expanded suite) in a fresh process with 1 CPU thread, as the trial gets in the suite; both
sides include process start and imports, the suite also Ray's start and MLflow. Efficiency =
(sum of solo times / concurrency) / suite wall time. Usage:
    python bench/bench_suite.py [--epochs 8] [--images 48] [--concurrency 2]
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

ROOT = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, ROOT)

SUITE = """
description: bench_suite, four tiny trials
variants:
  - {{}}
  - {{lambda0: 7}}
  - {{ratios: '1:1,1:9'}}
  - {{ratios: '1:1,1:9', lambda0: 7}}
scales:
  tiny:
    resources: {{CPU: 1, GPU: 0}}
    cfg_options:
      synth_data.num_train: {images}
      synth_data.num_val: 16
      train_cfg.max_epochs: {epochs}
      train_cfg.val_interval: {epochs}
      param_scheduler.1.end: {epochs}
      default_hooks.checkpoint.interval: {epochs}
      train_dataloader.num_workers: 0
      train_dataloader.persistent_workers: false
      val_dataloader.num_workers: 0
      val_dataloader.persistent_workers: false
"""


def timed(cmd, env, cwd) -> float:
    start = time.monotonic()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=8)
    parser.add_argument('--images', type=int, default=48, help='training images (batch 8)')
    parser.add_argument('--concurrency', type=int, default=2, help='trials at once (1 CPU each)')
    args = parser.parse_args()
    from experiments import suites
    from prm_rga.datasets import make_synth

    tmp = tempfile.mkdtemp(prefix='bench_suite_')
    synth = osp.join(tmp, 'synth')
    make_synth(synth, seed=0, num_train=args.images, num_val=16)
    env = dict(os.environ, PRM_RGA_SYNTH=synth, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    path = osp.join(tmp, 'bench.yaml')
    with open(path, 'w') as f:
        f.write(SUITE.format(epochs=args.epochs, images=args.images))
    os.environ['PRM_RGA_SYNTH'] = synth
    trials = suites.expand(suites.load_suite(path), 'tiny')
    cli = [sys.executable, '-m', 'prm_rga_cli']
    solo = []
    for i, trial in enumerate(trials):
        config = osp.join(tmp, f'trial{i}.py')
        trial.configs[0].dump(config)
        solo.append(timed([*cli, 'train', config, '--work-dir', osp.join(tmp, f'solo{i}')],
                          env, tmp))
        print(f'solo {trial.name}: {solo[-1]:.1f} s', flush=True)
    suite = timed([*cli, 'suite', 'run', path, '--max-concurrent', str(args.concurrency)],
                  env, tmp)
    ideal = sum(solo) / args.concurrency
    print(f'{len(trials)} trials, {args.epochs} epochs of {args.images // 8} iterations each')
    print(f'sum of solo times {sum(solo):.1f} s / concurrency {args.concurrency} = '
          f'{ideal:.1f} s; suite wall time {suite:.1f} s')
    print(f'efficiency: {ideal / suite:.2f} (target >= 0.9)')


if __name__ == '__main__':
    main()
