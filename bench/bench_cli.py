"""Start-up of the `prm-rga` command, old dispatcher against new, in one run (issue 20 targets:
`prm-rga --help` <= 1 s, `prm-rga suite list` <= 2 s, `prm-rga report` over the quick store
<= 5 s on 2 cores).

New: `python -m prm_rga_cli` from this checkout. Old: `python -m prm_rga.cli` from a git worktree
of OLD_REV (default: the commit before `prm_rga_cli` was added), whose dispatcher imported
every command module, and with them torch, mmdet and Ray, before parsing. Each command runs in a
fresh process, old and new alternating, REPEAT times; the median wall time is reported. The
report runs over STORE (default: the quick suite of the test fixture store, tests/mlflow_store.py,
written once to a temp dir).

    python bench/bench_cli.py [--repeat 5] [--old-rev REV] [--store sqlite:///PATH/mlflow.db]
"""
import argparse
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, osp.join(ROOT, 'tests'))


def git(*argv) -> str:
    return subprocess.run(['git', '-C', ROOT, *argv], capture_output=True, text=True,
                          check=True).stdout.strip()


def wall(tree: str, module: str, argv: list) -> float:
    env = dict(os.environ, PYTHONPATH=tree)
    start = time.perf_counter()
    subprocess.run([sys.executable, '-m', module, *argv], env=env, cwd=tree, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--old-rev', help='the old dispatcher\'s revision')
    parser.add_argument('--store', help='MLflow tracking URI holding a `quick` experiment')
    args = parser.parse_args()
    old_rev = args.old_rev or git('log', '-n1', '--diff-filter=A', '--format=%H', '--',
                                  'prm_rga_cli/__init__.py') + '^'
    tmp = tempfile.mkdtemp(prefix='bench_cli_')
    old_tree = osp.join(tmp, 'old')
    git('worktree', 'add', '--detach', old_tree, old_rev)
    try:
        store = args.store
        if store is None:
            from mlflow_store import TRIALS, write_store
            store = write_store(osp.join(tmp, 'store'), [t for t in TRIALS if t[0] == 'quick'],
                                broken=None)['uri']
        commands = {
            'prm-rga --help': ['--help'],
            'prm-rga report --help': ['report', '--help'],
            'prm-rga suite list': ['suite', 'list'],
            'prm-rga report quick': ['report', 'quick', '--tracking-uri', store, '--out'],
        }
        print(f'old: {git("rev-parse", "--short", old_rev)} (python -m prm_rga.cli), new: '
              f'this checkout (python -m prm_rga_cli); median of {args.repeat} runs, wall s')
        print(f'{"command":<24} {"old":>7} {"new":>7} {"old/new":>8}')
        for label, argv in commands.items():
            times = {'old': [], 'new': []}
            for i in range(args.repeat):
                for side, tree, module in (('old', old_tree, 'prm_rga.cli'),
                                           ('new', ROOT, 'prm_rga_cli')):
                    out = [osp.join(tmp, f'report-{side}-{i}')] if argv[-1] == '--out' else []
                    times[side].append(wall(tree, module, argv + out))
            old, new = (statistics.median(times[s]) for s in ('old', 'new'))
            print(f'{label:<24} {old:7.2f} {new:7.2f} {old / new:7.1f}x', flush=True)
    finally:
        git('worktree', 'remove', '--force', old_tree)


if __name__ == '__main__':
    main()
