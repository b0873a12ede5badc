"""The `prm-rga` command. Each subcommand lives with the package that owns it; a module listed
here exposes ``add_commands(subparsers)`` and sets ``func`` on the parsers it adds."""
import argparse
import importlib
import sys

from prm_rga.errors import DivergedError, InputError

COMMAND_MODULES = (
    'prm_rga.train',
    'prm_rga.datasets.synth',
    'experiments.cli',
    'analysis.report',
    'dashboards.dashboard',
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='prm-rga',
        description='RGA and PRM for two-stage detectors: train, run ablation suites, '
        'regenerate the paper figures.')
    subparsers = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (InputError, DivergedError) as err:
        print(f'prm-rga: error: {err}', file=sys.stderr)
        return 2 if isinstance(err, InputError) else 1


if __name__ == '__main__':
    sys.exit(main())
