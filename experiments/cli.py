"""`prm-rga suite list|run|status|export|import` and `prm-rga ui`. Ray and MLflow are imported
only by the commands that use them (`experiments.launcher`, `experiments.export`,
`experiments.ui`), so that the parser and `suite list` start quickly."""
import argparse

from experiments import suites
from prm_rga_errors import InputError


def positive(convert):
    """An argparse type: CONVERT(text), refused by argparse (exit 2) unless > 0."""
    def parse(text):
        value = convert(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f'must be > 0, got {text}')
        return value
    parse.__name__ = convert.__name__  # argparse's "invalid int value" names the type
    return parse


def suite_list(args) -> int:
    for name in suites.list_suites():
        suite = suites.load_suite(name)
        scales = ', '.join(suite.spec['scales'])
        print(f'{name:<8} [{scales}] {" ".join(suite.description.split())}')
    return 0


def suite_run(args) -> int:
    """One suite, or with --dry-run several planned together (docs/suites.md: a launch is one
    suite, so that each has its own --resume and a failed trial stops no other suite)."""
    if len(args.suites) > 1 and not args.dry_run:
        raise InputError(f'suite run {" ".join(args.suites)}: several suites are planned '
                         'together only with --dry-run; launch them one at a time, as `make '
                         'reproduce` does')
    from experiments.launcher import dry_run, run_suite
    planned = [(suite, suites.expand(suite, args.scale, args.seeds))
               for suite in map(suites.load_suite, args.suites)]
    names = [suite.name for suite, _ in planned]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f'suite run: suite {", ".join(twice)} named more than once')
    return dry_run(planned, args) if args.dry_run else run_suite(*planned[0], args)


def suite_status(args) -> int:
    from experiments.launcher import print_status
    return print_status(suites.load_suite(args.suite).name, args)


def add_commands(subparsers) -> None:
    p = subparsers.add_parser('suite', help='run the paper\'s ablation suites on Ray Tune, '
                              'tracked in MLflow')
    sub = p.add_subparsers(dest='suite_command', required=True, metavar='SUBCOMMAND')
    p = sub.add_parser('list', help='the suites and what each reproduces')
    p.set_defaults(func='experiments.cli:suite_list')

    p = sub.add_parser('run', help='run a suite (a private local Ray unless --address)')
    p.add_argument('suites', nargs='+', metavar='SUITE', help='a suite name (see `suite list`) '
                   'or a path to a suite .yaml; several only with --dry-run')
    p.add_argument('--scale', choices=suites.SCALES, default='tiny',
                   help='tiny: synthetic data on CPU; paper: COCO/CrowdHuman on GPUs')
    p.add_argument('--seeds', nargs='+', type=int, help='replace the suite\'s seeds')
    p.add_argument('--dry-run', action='store_true',
                   help='print the trials, the resources they ask for and their cost; run '
                   'nothing. With several suites, their total as launched one after the other')
    p.add_argument('--address', default='local', metavar='local|auto|HOST:PORT',
                   help='local (default): start a private Ray; auto or HOST:PORT: join a '
                   'running cluster')
    p.add_argument('--tracking-uri', metavar='URI', help='MLflow store (default: '
                   'sqlite:///<cwd>/mlruns/mlflow.db; on a cluster an http:// server)')
    p.add_argument('--max-concurrent', type=positive(int), metavar='N',
                   help='at most N trials at once (default: as many as the resources allow)')
    p.add_argument('--resume', action='store_true',
                   help='continue the last launch of this suite and scale: finished trials '
                   'are kept, the others continue from their last checkpoint')
    p.add_argument('--no-reuse', action='store_true',
                   help='train every trial, even one whose config a finished run in the store '
                   'already trained (default: such a trial reuses that run)')
    p.add_argument('--calibrate-iters', type=int, default=5, metavar='N',
                   help='for a trial with no finished run of its cost family in the store, '
                   'time N training iterations and one evaluation here to estimate it '
                   '(default 5; 0: no calibration, such trials are not estimated)')
    p.add_argument('--storage-path', metavar='PATH|URI',
                   help='Ray Tune experiment state and trial checkpoints (default: '
                   'outputs/tune; any URI Ray Tune accepts)')
    p.add_argument('--work-dir', metavar='DIR',
                   help='trial work dirs (logs, checkpoints) on the workers (default: '
                   'work_dirs/suites)')
    p.add_argument('--max-failures', type=int, default=0, metavar='N',
                   help='retry a failing trial N times (default 0: a diverged trial fails)')
    p.add_argument('--flush-interval', type=positive(float), default=5.0, metavar='S',
                   help='send buffered metrics to MLflow every S seconds (default 5)')
    p.set_defaults(func='experiments.cli:suite_run')

    p = sub.add_parser('status', help='the trials of the last launch of a suite, from MLflow')
    p.add_argument('suite', help='a suite name or path')
    p.add_argument('--scale', choices=suites.SCALES, help='(default: the last launch at any scale)')
    p.add_argument('--tracking-uri', metavar='URI', help='MLflow store (default: the local one)')
    p.set_defaults(func='experiments.cli:suite_status')

    p = sub.add_parser('export', help='write the finished runs of suites to a folder of plain '
                       'files (no model weights), for `suite import` into another store')
    p.add_argument('suites', nargs='+', metavar='SUITE', help='a suite name or path')
    p.add_argument('--out', required=True, metavar='DIR',
                   help='the export folder; runs already in it are kept, launches rewritten')
    p.add_argument('--tracking-uri', metavar='URI', help='MLflow store (default: the local one)')
    p.set_defaults(func='experiments.export:export_command')

    p = sub.add_parser('import', help='create the runs of a `suite export` folder in a store '
                       '(new run ids; a run imported before is not imported again)')
    p.add_argument('folder', metavar='DIR', help='a folder written by `suite export`')
    p.add_argument('--tracking-uri', metavar='URI', help='MLflow store (default: the local one)')
    p.set_defaults(func='experiments.export:import_command')

    p = subparsers.add_parser('ui', help='open the MLflow UI on the local runs')
    p.add_argument('--port', type=int, default=5000)
    p.add_argument('--tracking-uri', metavar='URI',
                   help='(default: sqlite:///<cwd>/mlruns/mlflow.db)')
    p.set_defaults(func='experiments.ui:ui')
