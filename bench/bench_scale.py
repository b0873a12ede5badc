"""The growth curve: `prm-rga suite run --dry-run` at 100, 500 and 2,000 tiny trials (time and
peak memory of the command), against building each trial's config from its file as expand did
before (timed in the same run); `prm-rga suite status` and `prm-rga report` on a launch of 50,
500 and 5,000 trial runs written with the MLflow client (no training), and a 50-run suite of
its own in that store, before and after the other suite grew, to show that a suite reads only
its own experiment's runs. Each also timed in this process, imports done ("work"): on a shared
machine the start-up of a command varies by more than the work it does.

    python bench/bench_scale.py [--trials 100 500 2000] [--runs 50 500 5000] [--naive 10]
                                [--keep DIR]
"""
import argparse
import contextlib
import io
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

LAMBDA0 = list(range(1, 11))
RATIOS = [f'1:{k}' for k in range(1, 11)]


# Runs a command and prints its peak RSS (KiB). A process forked from this one counts this
# one's memory as its own until it execs, so the command is started from this small one.
PEAK = ('import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, '
        'stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)')


def command(argv, cwd) -> tuple:
    """Wall seconds and peak RSS (MiB) of `prm-rga ARGV`, output discarded."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, '-c', PEAK, sys.executable, '-m', 'prm_rga_cli',
                           *argv], cwd=cwd, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode:
        raise RuntimeError(f'prm-rga {" ".join(argv)}: {done.stderr[-2000:]}')
    return seconds, int(done.stdout.split()[-1]) / 1024


def work(fn) -> float:
    """Seconds FN takes in this process, its output discarded."""
    start = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        fn()
    return time.monotonic() - start


def suite_file(root, trials: int, distinct: bool) -> str:
    """A tiny suite of TRIALS trials: lambda0 x ratios (100 settings) x seeds, or with
    DISTINCT every trial a setting of its own (a config-key axis instead of seeds)."""
    grid = {'lambda0': LAMBDA0, 'ratios': RATIOS}
    spec = {'description': f'{trials} trials', 'seeds': list(range(trials // 100)),
            'scales': {'tiny': {'resources': {'CPU': 1}}}}
    if distinct:
        grid['model.rpn_head.loss_bbox.loss_weight'] = [1 + i / 10 for i in range(trials // 100)]
        spec['seeds'] = [0]
    path = osp.join(root, f'scale{trials}{"-distinct" if distinct else ""}.yaml')
    with open(path, 'w') as f:
        yaml.safe_dump({**spec, 'grid': grid}, f)
    return path


def dry_runs(root, sizes, naive: int) -> None:
    from experiments.launcher import run_suite
    from experiments.suites import build_config, expand, load_suite
    print('## suite run --dry-run (tiny)\n')
    print('| trials | settings | command | peak memory | work |\n|---|---|---|---|---|')
    times = {}
    for trials, distinct in [(n, False) for n in sizes] + [(max(sizes), True)]:
        path = suite_file(root, trials, distinct)
        # no calibration: the dry run's own work (its cost: bench_estimate.py)
        seconds, mib = command(['suite', 'run', path, '--dry-run', '--calibrate-iters', '0'],
                               root)
        suite = load_suite(path)
        times[trials, distinct] = work(lambda: run_suite(
            suite, expand(suite, 'tiny'), argparse.Namespace(
                dry_run=True, scale='tiny', tracking_uri=f'sqlite:///{root}/none.db',
                resume=False, no_reuse=False, calibrate_iters=0, address=None,
                max_concurrent=None)))
        print(f'| {trials:,} | {trials if distinct else 100} | {seconds:.1f} s | {mib:.0f} MiB '
              f'| {times[trials, distinct]:.2f} s |', flush=True)
    small, large = min(sizes), max(sizes)
    per_trial = (times[large, False] - times[small, False]) / (large - small)
    per_setting = (times[large, True] - times[small, False]) / (large - small)
    # the way before: every trial's config read from its file (mmengine, _base_ and mmdet's
    # metafiles), measured in this process on NAIVE trials
    params = [t.params for t in expand(load_suite(suite_file(root, 100, False)), 'tiny')][:naive]
    before = statistics.median(work(lambda: build_config(p, 'tiny')) for p in params)
    print(f'\nper trial: {1000 * per_trial:.1f} ms a seed of a setting, {1000 * per_setting:.1f} '
          f'ms a setting of its own; before: {1000 * before:.0f} ms (config read per trial, '
          f'median of {len(params)}): {before / per_trial:.0f}x and {before / per_setting:.0f}x\n')


def write_runs(client, experiment, suite, parent, start: int, stop: int) -> None:
    """Finished trial runs START..STOP of SUITE's launch PARENT, as the launcher leaves them:
    tags, the suite params, config_hash and final val metrics (no histories, no artifacts)."""
    from mlflow.entities import Metric, Param
    for i in range(start, stop):
        lambda0, ratios, seed = LAMBDA0[i % 10], RATIOS[i // 10 % 10], i // 100
        name = f'ratios={ratios};lambda0={lambda0};seed={seed}'
        run_id = client.create_run(experiment, run_name=name, tags={
            'mlflow.parentRunId': parent, 'suite': suite, 'trial': name, 'scale': 'tiny',
            'node': '127.0.0.1'}).info.run_id
        params = dict(detector='faster_rcnn', backbone='r50', schedule='1x', dataset='coco',
                      ratios=ratios, sampling='soft', lambda0=str(lambda0), anneal='true',
                      ensemble='none', seed=str(seed), config_hash=f'{i:012x}')
        ap = 0.2 + 0.001 * lambda0 + 0.0005 * seed
        client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()],
                         metrics=[Metric(k, ap + d, 0, 12) for k, d in (
                             ('val/bbox_mAP', 0), ('val/bbox_mAP_50', 0.2),
                             ('val/gt1-3/bbox_mAP', 0.05), ('val/gt8-inf/bbox_mAP', -0.05))])
        client.set_terminated(run_id, 'FINISHED')


def stores(root, sizes) -> None:
    from mlflow import MlflowClient
    uri = f'sqlite:///{root}/store/mlflow.db'
    os.makedirs(osp.join(root, 'store'), exist_ok=True)
    client = MlflowClient(uri)
    launches = {}
    for suite in ('table4', 'table1'):  # table4 grows; table1 keeps 50 runs
        experiment = client.create_experiment(suite)
        parent = client.create_run(experiment, run_name=f'{suite}-tiny-1', tags={
            'suite': suite, 'scale': 'tiny', 'tune_experiment': f'{root}/tune/{suite}-tiny-1'})
        launches[suite] = (experiment, parent.info.run_id)
    write_runs(client, *launches['table1'][:1], 'table1', launches['table1'][1], 0, 50)

    from analysis import report as reports
    from experiments.launcher import print_status

    def measure(suite):
        """(command s, MiB, work s) of suite status and of the report."""
        out = osp.join(root, f'report-{suite}')
        status = command(['suite', 'status', suite, '--tracking-uri', uri], root)
        report = command(['report', suite, '--tracking-uri', uri, '--out', out], root)
        return (*status, work(lambda: print_status(suite, argparse.Namespace(
            tracking_uri=uri, scale=None)))), (*report, work(lambda: reports.build(
                [suite], uri, out, log=lambda m: None)))

    print('## suite status and report (SQLite store, runs written with the MLflow client)\n')
    print('| runs of the suite | runs in the store | suite status: command, work | '
          'prm-rga report: command, work |\n|---|---|---|---|')
    written, rows = 0, {}

    def row(suite, runs, store, status, report):
        print(f'| {runs:,} ({suite}) | {store:,} | {status[0]:.1f} s ({status[1]:.0f} MiB), '
              f'{status[2]:.2f} s | {report[0]:.1f} s ({report[1]:.0f} MiB), {report[2]:.2f} s |',
              flush=True)

    for n in sizes:
        start = time.monotonic()
        write_runs(client, launches['table4'][0], 'table4', launches['table4'][1], written, n)
        print(f'<!-- {n - written} runs written in {time.monotonic() - start:.0f} s -->')
        written = n
        rows[n] = measure('table4')
        row('table4', n, n + 50, *rows[n])
        if n == min(sizes):
            alone = measure('table1')
            row('table1', 50, n + 50, *alone)
    crowded = measure('table1')
    row('table1', 50, written + 50, *crowded)
    small, large = min(sizes), max(sizes)
    for what, i in (('suite status', 0), ('report', 1)):
        slope = (rows[large][i][2] - rows[small][i][2]) / (large - small)
        print(f'\n{what} (work): {1000 * slope:.2f} ms per run of the suite; a 50-run suite '
              f'{alone[i][2]:.2f} s beside {small:,} other runs, {crowded[i][2]:.2f} s beside '
              f'{large:,}', end='')
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--trials', type=int, nargs='+', default=[100, 500, 2000])
    parser.add_argument('--runs', type=int, nargs='+', default=[50, 500, 5000])
    parser.add_argument('--naive', type=int, default=10,
                        help='trials built the way before, for the baseline')
    parser.add_argument('--keep', help='work here (default: a temp dir)')
    args = parser.parse_args()
    root = osp.abspath(args.keep or tempfile.mkdtemp(prefix='bench_scale_'))
    os.makedirs(root, exist_ok=True)
    print(f'{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start\n')
    dry_runs(root, sorted(args.trials), args.naive)
    stores(root, sorted(args.runs))
    print(f'\nload average {os.getloadavg()[0]:.1f} at the end')


if __name__ == '__main__':
    main()
