"""The `prm-rga` command, above every package it dispatches to.

Building the parser imports only the light modules that declare the commands, so that
`prm-rga --help` and `prm-rga COMMAND --help` answer without torch, mmdet, Ray or MLflow. A
command names its handler as ``func='module:function'``; that module is imported only when the
command runs.
"""
import argparse
import importlib
import shlex
import sys
from importlib.metadata import version

from analysis import cli as analysis_cli
from dashboards import cli as dashboards_cli
from experiments import cli as experiments_cli
from prm_rga_cli import detector
from prm_rga_errors import DivergedError, InputError

COMMANDS = (detector, experiments_cli, analysis_cli, dashboards_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='prm-rga',
        description='RGA and PRM for two-stage detectors: train, run ablation suites, '
        'regenerate the paper figures.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {version("prm-rga")}')
    subparsers = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for commands in COMMANDS:
        commands.add_commands(subparsers)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(['prm-rga', *argv])  # recorded with a suite's launch
    module, _, name = args.func.partition(':')
    func = getattr(importlib.import_module(module), name)
    try:
        return func(args) or 0
    except (InputError, DivergedError) as err:
        print(f'prm-rga: error: {err}', file=sys.stderr)
        return 2 if isinstance(err, InputError) else 1
