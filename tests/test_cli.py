"""The command line's layering: `prm_rga` (the detector library, loadable by mmdet alone) never
imports the layers above it, and `prm-rga --help` / `prm-rga COMMAND --help` answer without the
heavy stacks, which load only when a command runs. Each check runs in a fresh interpreter."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
UPPER = ('experiments', 'analysis', 'dashboards', 'prm_rga_cli')
HEAVY = ('torch', 'mmdet', 'mmcv', 'ray', 'mlflow', 'pandas', 'matplotlib')
COMMANDS = ('train', 'test', 'data', 'suite', 'ui', 'report', 'dashboard')


def loaded_after(code: str) -> list:
    """Top-level packages in sys.modules after CODE runs in a new interpreter."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, '-c', code + '\nimport sys, json\nprint(json.dumps('
                          'sorted({m.split(".")[0] for m in sys.modules})))'],
                         env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_detector_library_imports_no_layer_above_it():
    code = ('import pkgutil, importlib, prm_rga, prm_rga_eval\n'
            'for package in (prm_rga, prm_rga_eval):\n'
            '    for m in pkgutil.walk_packages(package.__path__, package.__name__ + "."):\n'
            '        importlib.import_module(m.name)')
    loaded = loaded_after(code)
    assert 'mmdet' in loaded  # the library itself was imported
    assert not set(UPPER) & set(loaded)


@pytest.mark.parametrize('argv', [['--help']] + [[c, '--help'] for c in COMMANDS]
                         + [['suite', s, '--help'] for s in ('list', 'run', 'status', 'export', 'import')]
                         + [['data', 'synth', '--help']])
def test_help_needs_none_of_the_heavy_stacks(argv):
    code = (f'import contextlib, io\nfrom prm_rga_cli import main\n'
            f'with contextlib.redirect_stdout(io.StringIO()) as out:\n'
            f'    try:\n        main({argv!r})\n    except SystemExit as e:\n'
            f'        assert e.code == 0, e.code\n'
            f'assert "usage: prm-rga" in out.getvalue(), out.getvalue()')
    assert not set(HEAVY) & set(loaded_after(code))


def test_the_report_needs_no_detector_stack():
    """The report reads the store, the eval records and the bootstrap (prm_rga_eval): none of
    it may pull in torch, mmdet, mmcv or Ray, whose import is most of a report's start; nor
    may `suite export|import`, which only copy runs."""
    code = ('import analysis.report, analysis.runs, analysis.intervals, analysis.claims, '
            'analysis.tables, analysis.figures, prm_rga_eval.bootstrap, prm_rga_eval.records, '
            'experiments.export')
    loaded = loaded_after(code)
    assert 'mlflow' in loaded and 'prm_rga_eval' in loaded  # what the report does need
    assert not {'torch', 'mmdet', 'mmcv', 'mmengine', 'ray', 'prm_rga'} & set(loaded)


def test_suite_list_needs_none_of_the_heavy_stacks():
    code = 'from prm_rga_cli import main\nassert main(["suite", "list"]) == 0'
    assert not set(HEAVY) & set(loaded_after(code))


def test_every_command_names_a_handler_that_exists():
    import argparse
    import importlib

    from prm_rga_cli import build_parser

    def leaves(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from leaves(sub)
                return
        yield parser

    handlers = [p.get_default('func') for p in leaves(build_parser())]
    # train, test, data synth, suite list|run|status|export|import, ui, report, dashboard
    assert len(handlers) == 11
    for handler in handlers:
        module, _, name = handler.partition(':')
        assert callable(getattr(importlib.import_module(module), name)), handler
