"""Has the tiny 1x finished learning? Trains the tiny baseline, RGA and PRM (one seed each, one
thread each, seed 0, evaluated after every epoch) and draws their val AP per epoch.

Convergence as the project defines it (issue 16): the last quarter of the schedule adds at most
5% of the final val AP, and the final AP lies between 40 and 80. Prints per trial the final AP,
the AP at three quarters of the schedule, that gain's share of the final AP, and the wall time
of its training (the evaluation after every epoch excluded; a suite's trial evaluates every
third epoch). Writes the figure and a CSV. Usage:
    python bench/bench_convergence.py [--out docs/figures] [--parallel 2] [--work-dir DIR]
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
CONFIGS = osp.join(HERE, '..', 'experiments', 'configs', 'tiny')
TRIALS = {
    'baseline (1:3)': 'faster-rcnn_tiny_synth.py',
    'RGA (lambda0 7)': 'faster-rcnn_tiny_rga_synth.py',
    'PRM (1:1, 1:9)': 'faster-rcnn_tiny_prm_synth.py',
}


def scalars(work_dir: str) -> list:
    """The rows of mmengine's ``vis_data/scalars.json`` of the run in ``work_dir``."""
    (path, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f]


def curve(rows: list) -> dict:
    """val AP per epoch (the ensemble's, for PRM) and the seconds spent in training iterations."""
    aps = {int(r['step']): r['val/bbox_mAP'] for r in rows if 'val/bbox_mAP' in r}
    train = [r for r in rows if 'loss' in r]
    # ``time`` is the mean over the logging window that ends at ``iter``
    seconds, last = 0.0, 0
    for r in train:
        seconds += r['time'] * (r['iter'] - last)
        last = r['iter']
    return dict(aps=aps, train_seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=osp.join(HERE, '..', 'docs', 'figures'))
    parser.add_argument('--parallel', type=int, default=2, help='trials at once (one core each)')
    parser.add_argument('--work-dir', help='keep the trials here (default: a temporary folder)')
    args = parser.parse_args()
    root = args.work_dir or tempfile.mkdtemp(prefix='bench_convergence_')
    os.makedirs(root, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    pending, running, wall = list(TRIALS.items()), {}, {}
    while pending or running:
        while pending and len(running) < args.parallel:
            name, config = pending.pop(0)
            work_dir = osp.join(root, config[:-3])
            cmd = [sys.executable, '-m', 'prm_rga_cli', 'train', osp.join(CONFIGS, config),
                   '--work-dir', work_dir, '--cfg-options', 'train_cfg.val_interval=1',
                   'randomness.seed=0']
            log = open(work_dir + '.log', 'w')
            running[name] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT),
                             time.perf_counter(), work_dir)
        time.sleep(2)
        for name, (proc, start, work_dir) in list(running.items()):
            if proc.poll() is not None:
                if proc.returncode:
                    sys.exit(f'{name}: training failed, see {work_dir}.log')
                wall[name] = time.perf_counter() - start
                del running[name]
    results = {name: curve(scalars(osp.join(root, config[:-3])))
               for name, config in TRIALS.items()}

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    os.makedirs(args.out, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    rows = []
    print(f'{"trial":18} {"final AP":>8} {"AP at 3/4":>9} {"last 1/4":>8} {"train s":>8} '
          f'{"wall s":>7}')
    for name, r in results.items():
        epochs = sorted(r['aps'])
        aps = [100 * r['aps'][e] for e in epochs]
        ax.plot(epochs, aps, marker='o', ms=3, label=name)
        final, at = aps[-1], 100 * r['aps'][epochs[-1] * 3 // 4]
        share = (final - at) / final
        rows.append(dict(trial=name, final_ap=round(final, 2), ap_at_3_4=round(at, 2),
                         last_quarter_share=round(share, 4),
                         train_seconds=round(r['train_seconds'], 1),
                         wall_seconds_eval_every_epoch=round(wall[name], 1)))
        print(f'{name:18} {final:8.1f} {at:9.1f} {share:8.1%} {r["train_seconds"]:8.0f} '
              f'{wall[name]:7.0f}')
    ax.set_xlabel('epoch')
    ax.set_ylabel('val AP (COCO, %)')
    ax.set_title('tiny 1x on the synthetic set, one seed each')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(osp.join(args.out, 'tiny-1x-curves.png'), dpi=120)
    with open(osp.join(args.out, 'tiny-1x-curves.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == '__main__':
    main()
