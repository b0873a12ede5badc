"""Start-up of the `prm-rga` command, old dispatcher against new, in one run (issue 20 targets:
`prm-rga --help` <= 1 s, `prm-rga suite list` <= 2 s, `prm-rga report` over the quick store
<= 5 s on 2 cores).

New: `python -m prm_rga_cli` from this checkout. Old: the same from a git worktree of OLD_REV, or
`python -m prm_rga.cli` where OLD_REV predates `prm_rga_cli` (the default: the commit before it
was added, whose dispatcher imported every command module, and with them torch, mmdet and Ray,
before parsing). Each command runs in a fresh process, old and new alternating, REPEAT times;
the medians of the wall time and of the CPU time (user + sys of the process and its children: on
a shared machine the wall time measures the load as much as the command) are reported, with the
load average before and after. The report runs over STORE (default: the quick suite of the test
fixture store, tests/mlflow_store.py, written once to a temp dir), each time into a new folder
(nothing cached).

    python bench/bench_cli.py [--repeat 5] [--old-rev REV] [--store sqlite:///PATH/mlflow.db]
"""
import argparse
import os
import os.path as osp
import resource
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


def timed(tree: str, module: str, argv: list) -> tuple:
    """(wall, CPU) seconds of ``python -m MODULE ARGV`` run from TREE."""
    env = dict(os.environ, PYTHONPATH=tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, '-m', module, *argv], env=env, cwd=tree, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def load() -> str:
    return ' '.join(f'{x:.1f}' for x in os.getloadavg())


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
    old_module = ('prm_rga_cli' if osp.exists(osp.join(old_tree, 'prm_rga_cli', '__init__.py'))
                  else 'prm_rga.cli')
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
        print(f'old: {git("rev-parse", "--short", old_rev)} (python -m {old_module}), new: '
              f'this checkout (python -m prm_rga_cli); median of {args.repeat} runs, seconds; '
              f'load average {load()}')
        print(f'{"command":<24} {"old wall":>9} {"new wall":>9} {"old CPU":>8} {"new CPU":>8} '
              f'{"old/new CPU":>12}')
        for label, argv in commands.items():
            times = {'old': [], 'new': []}
            for i in range(args.repeat):
                for side, tree, module in (('old', old_tree, old_module),
                                           ('new', ROOT, 'prm_rga_cli')):
                    out = [osp.join(tmp, f'report-{side}-{i}')] if argv[-1] == '--out' else []
                    times[side].append(timed(tree, module, argv + out))
            (old_wall, old_cpu), (new_wall, new_cpu) = (
                [statistics.median(t[k] for t in times[s]) for k in (0, 1)] for s in ('old', 'new'))
            print(f'{label:<24} {old_wall:9.2f} {new_wall:9.2f} {old_cpu:8.2f} {new_cpu:8.2f} '
                  f'{old_cpu / new_cpu:11.1f}x', flush=True)
        print(f'load average {load()}')
    finally:
        git('worktree', 'remove', '--force', old_tree)


if __name__ == '__main__':
    main()
