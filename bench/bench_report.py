"""Time `prm-rga report` on a store of 50 runs with 2,000-step metric histories (target: at most
30 s on 2 cores), and the bulk history loading against the naive way (one
`MlflowClient.get_metric_history` call per run and key) on the same store, in the same run.

    python bench/bench_report.py [--runs 50] [--steps 2000] [--keep DIR]
"""
import argparse
import os.path as osp
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'tests'))

from mlflow_store import write_store  # noqa: E402

from analysis import claims, figures, report, tables  # noqa: E402,F401 (imports not timed)
from analysis.runs import Runs  # noqa: E402

# 50 runs over the paper's ablations: Table 4 (λ0), Tables 1/5/6 (heads), Table 8, Fig. 2, Fig. 5.
CONFIGS = [
    ('table4', dict(lambda0='1.0'), 30.0), ('table4', dict(lambda0='7.0', anneal='false'), 30.6),
    *[('table4', dict(lambda0=f'{k}.0', anneal='true'), 30.8) for k in (3, 5, 7, 9)],
    ('table5', dict(ratios='1:1'), 30.2), ('table5', dict(ratios='1:9'), 29.0),
    *[('table5', dict(ratios=f'1:1,{r}'), 31.0) for r in ('1:1', '1:5', '1:9')],
    ('table6', dict(ratios='1:1,1:9,1:3'), 31.2),
    *[('table8', dict(ratios=r, sampling='hard'), 28.0) for r in ('1:1', '1:3', '1:5', '1:7')],
    *[('fig2', dict(ratios=r), 29.5) for r in ('1:5', '1:7')],
    ('fig5', dict(detector='mask_rcnn'), 31.0),
]


def trials(n_runs):
    """CONFIGS over seeds 0, 1, 2, ... until N_RUNS runs."""
    out, seed = [], 0
    while sum(len(t[2]) for t in out) < n_runs:
        for suite, params, ap in CONFIGS:
            if sum(len(t[2]) for t in out) < n_runs:
                out.append((suite, params, (seed, ), ap))
        seed += 1
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=50)
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--keep', help='write the store and the reports here (default: a temp '
                        'dir); a store already there is reused')
    args = parser.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix='bench_report_')

    start = time.time()
    db = osp.join(root, 'store', 'mlflow.db')
    if osp.exists(db):
        store = dict(uri=f'sqlite:///{db}', suites=sorted({t[0] for t in CONFIGS}))
    else:
        store = write_store(osp.dirname(db), trials(args.runs), broken=None, steps=args.steps)
    runs = Runs(store['suites'], store['uri'], cache_dir=osp.join(root, 'cache'))
    keys = [c for c in runs.frame if c.startswith('train/')]
    print(f'store: {len(runs.frame)} runs x {len(keys)} train keys x {args.steps} steps '
          f'(written in {time.time() - start:.0f} s) at {store["uri"]}')

    start = time.time()
    report.build(store['suites'], store['uri'], osp.join(root, 'report'), log=lambda m: None)
    t_report = time.time() - start
    start = time.time()
    subprocess.run([sys.executable, '-m', 'prm_rga_cli', 'report', *store['suites'],
                    '--tracking-uri', store['uri'], '--out', osp.join(root, 'report-cli')],
                   check=True, stdout=subprocess.DEVNULL)
    t_cli = time.time() - start

    start = time.time()
    bulk = runs.history(runs.frame['run_id'], keys)
    t_bulk = time.time() - start
    start = time.time()
    naive = sum(len(runs.client.get_metric_history(r, k))
                for r in runs.frame['run_id'] for k in keys)
    t_naive = time.time() - start
    assert naive == len(bulk), (naive, len(bulk))

    print(f'prm-rga report ({", ".join(store["suites"])}): {t_cli:.1f} s as a command '
          f'(target <= 30 s), {t_report:.1f} s in-process (imports done)')
    print(f'all histories ({len(bulk):,} points): bulk {t_bulk:.2f} s, one call per run and key '
          f'{t_naive:.2f} s: {t_naive / t_bulk:.1f}x faster')


if __name__ == '__main__':
    main()
