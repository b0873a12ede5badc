"""Every input `prm-rga` refuses, from one table. CASES is the single source: docs/errors.md is
generated from it (``PRM_RGA_WRITE_ERRORS=1 pytest tests/test_bad_input.py`` rewrites the doc
with the messages the commands print), and this test fails when the doc and the cases differ,
so a row without a case, or a case without a row, cannot pass.

Each case asserts the exit code, that the message names the file, field or value, that nothing
printed a traceback and, for the commands that touch MLflow, that the store holds no new run or
experiment afterwards. Most run in this process through ``prm_rga_cli.main`` (the dispatcher
that turns an InputError into exit 2; an uncaught exception would fail the test as a traceback
would): every `prm-rga` process pays seconds of imports. The cases marked ``process`` run as a
real `python -m prm_rga_cli`, one per layer that handles errors (analysis, launcher, detector
library): only a process shows the exit status and everything that reaches stderr, logging and
Ray's and MLflow's shutdown included."""
import contextlib
import io
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys
from dataclasses import dataclass

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from conftest import CONFIGS
from mlflow_store import write_store
from prm_rga.datasets import make_synth
from prm_rga_cli import main

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOC = osp.join(ROOT, 'docs', 'errors.md')
WRITE = os.environ.get('PRM_RGA_WRITE_ERRORS') == '1'
TINY = osp.join(CONFIGS, 'tiny', 'faster-rcnn_tiny_synth.py')
DEAD = 'http://127.0.0.1:9'  # the discard port: nothing listens there
# the tiny config on the test's small synthetic set (through $PRM_RGA_SYNTH), nothing to make
OFFLINE = {'synth_data': None, 'synth_backbone': None, 'model.backbone.init_cfg': None}
SUITE = "scales: {tiny: {resources: {CPU: 1}, cfg_options: %s}}\n"
CUT_RUN = 'f' * 32  # the run of the broken exports
EXPORTED = json.dumps(dict(run_id=CUT_RUN, experiment='quick', status='FINISHED', start_time=1,
                           params={}, tags={}, metrics={}))


@dataclass
class Case:
    command: str  # the doc's first column
    input: str  # what is wrong, for the doc
    argv: str  # the command line after `prm-rga`, formatted with the workspace `w`
    names: tuple = ()  # what the message must contain (formatted with `w`)
    code: int = 2
    mlflow: bool = False  # touches the store: it must hold no new run or experiment
    process: bool = False  # run as a real process


def tiny(*options, **cfg_options):
    """`TINY OPTIONS --cfg-options ...`: the tiny config on the test's synthetic set, with
    CFG_OPTIONS (``a__b`` for ``a.b``) on top of OFFLINE."""
    merged = {**OFFLINE, **{k.replace('__', '.'): v for k, v in cfg_options.items()}}
    return ' '.join([TINY, *options, '--cfg-options', *(f'{k}={v}' for k, v in merged.items())])


ANN = 'train_dataloader.dataset.ann_file'
CASES = [
    Case('train', 'config file that does not exist', 'train {w}/nope.py', ('{w}/nope.py', )),
    Case('train', 'config that does not parse', 'train {w}/syntax.py', ('{w}/syntax.py',
                                                                        'was never closed')),
    Case('train', 'config that is not UTF-8', 'train {w}/latin1.py', ('{w}/latin1.py', 'utf-8')),
    Case('train', 'config of a type mmengine does not read', 'train {w}/config.txt',
         ('{w}/config.txt', )),
    Case('train', 'config that defines no model', 'train {w}/empty.py', ('{w}/empty.py', 'model')),
    Case('train', 'annotation file that does not exist',
         'train ' + tiny(**{ANN: '{w}/nowhere.json'}), (ANN, '{w}/nowhere.json')),
    Case('train', 'empty annotation file', 'train ' + tiny(**{ANN: '{w}/empty.json'}),
         (ANN, '{w}/empty.json', 'empty')),
    Case('train', 'annotation file that is not UTF-8',
         'train ' + tiny(**{ANN: '{w}/latin1.json'}), (ANN, '{w}/latin1.json', 'UTF-8')),
    Case('train', 'annotation file that is not JSON', 'train ' + tiny(**{ANN: '{w}/cut.json'}),
         (ANN, '{w}/cut.json', 'not valid JSON')),
    Case('train', 'JSON that is not COCO (no images, annotations, categories)',
         'train ' + tiny(**{ANN: '{w}/list.json'}), (ANN, '{w}/list.json', 'images')),
    Case('train', 'COCO box with a negative width',
         'train ' + tiny(**{ANN: '{w}/negative.json'}),
         ('{w}/negative.json', 'annotations[1].bbox')),
    Case('train', 'COCO file repeating an image id',
         'train ' + tiny(**{ANN: '{w}/repeated_image.json'}),
         ('{w}/repeated_image.json', 'images[1]', 'id 1')),
    Case('train', 'COCO file repeating an annotation id',
         'train ' + tiny(**{ANN: '{w}/repeated_ann.json'}),
         ('{w}/repeated_ann.json', 'annotations[1]', 'id 7')),
    Case('train', "COCO categories that are not the config's classes",
         'train ' + tiny(**{ANN: '{w}/other_classes.json'}),
         ('{w}/other_classes.json', 'circle', 'dog')),
    Case('train', 'COCO file leaving no training image after filter_cfg',
         'train ' + tiny(**{ANN: '{w}/no_boxes.json'}),
         ('{w}/no_boxes.json', 'filter_empty_gt')),
    Case('train', 'image folder that does not exist',
         'train ' + tiny(train_dataloader__dataset__data_prefix__img='nowhere/'),
         ('train_dataloader.dataset.data_prefix.img', 'nowhere')),
    Case('train', "evaluator's annotation file that does not exist",
         'train ' + tiny(val_evaluator__ann_file='{w}/nowhere_val.json'),
         ('val_evaluator.ann_file', '{w}/nowhere_val.json')),
    Case('train', '.odgt box without fbox', 'train ' + tiny(**{ANN: '{w}/no_fbox.odgt'}),
         ('{w}/no_fbox.odgt', 'line 1', 'fbox')),
    Case('train', '.odgt file that is not UTF-8', 'train ' + tiny(**{ANN: '{w}/latin1.odgt'}),
         ('{w}/latin1.odgt', 'UTF-8')),
    Case('train', '--resume checkpoint that does not exist',
         'train ' + tiny('--resume', '{w}/nowhere.pth'), ('load_from', '{w}/nowhere.pth')),
    Case('train', 'load_from that is not a checkpoint',
         'train ' + tiny(load_from='{w}/config.txt'), ('load_from', '{w}/config.txt',
                                                        'not a checkpoint')),
    Case('train', 'work dir that cannot be created',
         'train ' + tiny('--work-dir', '{w}/config.txt/work'), ('{w}/config.txt', 'is a file')),

    Case('test', '--checkpoint that is not a checkpoint',
         'test ' + tiny('--checkpoint', '{w}/notes.pth'),
         ('--checkpoint', '{w}/notes.pth', 'not a checkpoint'), process=True),
    Case('test', '--checkpoint that does not exist',
         'test ' + tiny('--checkpoint', '{w}/nowhere.pth'), ('--checkpoint', '{w}/nowhere.pth')),
    Case('test', '--test-head that is not a number', 'test {w}/x.py --test-head first',
         ('--test-head', 'first')),
    Case('test', '--run of a run the store lacks', 'test --run 0123456789abcdef '
         '--tracking-uri {w.uri}', ('0123456789abcdef', '{w.uri}'), mlflow=True),
    Case('test', '--run with a store that does not exist',
         'test --run 0123456789abcdef --tracking-uri sqlite:///{w}/none.db', ('{w}/none.db', )),

    Case('data synth', '--out that is a file, not a synthetic set',
         'data synth --out {w}/config.txt', ('{w}/config.txt', )),
    Case('data synth', '--out that cannot be created', 'data synth --out {w}/config.txt/synth',
         ('{w}/config.txt', 'is a file')),
    Case('data synth', 'negative --train', 'data synth --out {w}/s --train -1',
         ('num_train', '-1')),
    Case('data synth', '--image-size too small', 'data synth --out {w}/s --image-size 32',
         ('image_size', '32')),

    Case('suite run', 'suite name that does not exist', 'suite run tabel4', ('tabel4', 'table4')),
    Case('suite run', 'suite file that is not YAML', 'suite run {w}/broken.yaml',
         ('{w}/broken.yaml', 'malformed YAML')),
    Case('suite run', 'suite file that is not UTF-8', 'suite run {w}/latin1.yaml',
         ('{w}/latin1.yaml', 'UTF-8')),
    Case('suite run', 'unknown suite axis', 'suite run {w}/axis.yaml',
         ('{w}/axis.yaml', 'lamda0')),
    Case('suite run', 'scale the suite does not have', 'suite run {w}/ok.yaml --scale paper',
         ('{w}/ok.yaml', 'paper')),
    Case('suite run', '--seeds that are not integers', 'suite run quick --seeds abc',
         ('--seeds', 'abc')),
    Case('suite run', '--max-concurrent 0', 'suite run quick --max-concurrent 0',
         ('--max-concurrent', '0')),
    Case('suite run', 'several suites without --dry-run', 'suite run table1 table4',
         ('table1 table4', '--dry-run')),
    Case('suite run', 'a suite named twice in a dry run', 'suite run table1 table1 --dry-run',
         ('table1', 'more than once')),
    Case('suite run', "a trial's pretrained checkpoint that does not exist",
         'suite run {w}/no_weights.yaml --tracking-uri {w.uri}',
         ('trial seed=0', 'load_from', '{w}/nowhere.pth'), mlflow=True),
    Case('suite run', "a trial's annotation file that does not exist",
         'suite run {w}/no_data.yaml --tracking-uri {w.uri}',
         ('trial seed=0', ANN, '{w}/nowhere/'), mlflow=True),
    Case('suite run', '--storage-path that cannot be created',
         'suite run {w}/ok.yaml --tracking-uri {w.uri} --storage-path {w}/config.txt/tune',
         ('--storage-path', '{w}/config.txt'), mlflow=True, process=True),
    Case('suite run', '--storage-path URI of no file system',
         'suite run {w}/ok.yaml --tracking-uri {w.uri} --storage-path nosuch://bucket/tune',
         ('--storage-path', 'nosuch://bucket/tune'), mlflow=True),
    Case('suite run', '--work-dir that cannot be created',
         'suite run {w}/ok.yaml --tracking-uri {w.uri} --work-dir {w}/config.txt/work',
         ('--work-dir', '{w}/config.txt'), mlflow=True),
    Case('suite run', '--tracking-uri where no server answers',
         f'suite run {{w}}/ok.yaml --tracking-uri {DEAD}', (DEAD, )),
    Case('suite run', '--tracking-uri of another kind', 'suite run {w}/ok.yaml --tracking-uri '
         'mysql://db/mlflow', ('mysql://db/mlflow', )),
    Case('suite run', '--resume without an earlier launch',
         'suite run {w}/ok.yaml --tracking-uri {w.uri} --resume', ('--resume', 'ok'), mlflow=True),
    Case('suite run', '--address where no Ray head answers',
         'suite run {w}/ok.yaml --tracking-uri {w.uri} --address 127.0.0.1:9',
         ('--address', '127.0.0.1:9'), mlflow=True),

    Case('suite status', 'suite name that does not exist', 'suite status tabel4', ('tabel4', )),
    Case('suite status', 'suite never launched in the store',
         'suite status table1 --tracking-uri {w.uri}', ('table1', '{w.uri}'), mlflow=True),
    Case('suite status', '--tracking-uri where no server answers',
         f'suite status quick --tracking-uri {DEAD}', (DEAD, )),

    Case('suite export', 'suite never run in the store',
         'suite export table1 --out {w}/export --tracking-uri {w.uri}', ('table1', ),
         mlflow=True),
    Case('suite export', '--out that cannot be created',
         'suite export quick --out {w}/config.txt/export --tracking-uri {w.uri}',
         ('--out', '{w}/config.txt/export'), mlflow=True),
    Case('suite import', 'folder that holds no export',
         'suite import {w}/synth --tracking-uri {w.uri}', ('{w}/synth', ), mlflow=True),
    Case('suite import', 'run.json cut off mid-write (nothing is imported)',
         'suite import {w}/export_cut --tracking-uri {w.uri}',
         (f'{{w}}/export_cut/runs/{CUT_RUN}/run.json', ), mlflow=True),
    Case('suite import', 'metric history that is not gzip (nothing is imported)',
         'suite import {w}/export_plain --tracking-uri {w.uri}',
         (f'{{w}}/export_plain/runs/{CUT_RUN}/metrics.csv.gz', ), mlflow=True),
    Case('suite import', '--tracking-uri where no server answers',
         f'suite import {{w}}/export_plain --tracking-uri {DEAD}', (DEAD, )),

    Case('report', 'suite that is neither known nor in the store',
         'report tabel4 --tracking-uri {w.uri} --out {w}/report', ('tabel4', 'table4', '{w.uri}'),
         mlflow=True, process=True),
    Case('report', 'store that does not exist',
         'report quick --tracking-uri sqlite:///{w}/none.db --out {w}/report', ('{w}/none.db', )),
    Case('report', 'suites without a finished run (the report is written, and says so)',
         'report table4 --tracking-uri {w.uri} --out {w}/report', ('table4', '{w.uri}'),
         code=1, mlflow=True),
    Case('report', '--scale that does not exist', 'report quick --scale huge',
         ('--scale', 'huge')),

    Case('dashboard', 'suite that is neither known nor in the store',
         'dashboard tabel4 --tracking-uri {w.uri} --out {w}/report', ('tabel4', '{w.uri}'),
         mlflow=True),
    Case('dashboard', '--tracking-uri where no server answers',
         f'dashboard quick --tracking-uri {DEAD} --out {{w}}/report', (DEAD, )),

    Case('ui', 'store that does not exist', 'ui --tracking-uri sqlite:///{w}/none.db',
         ('{w}/none.db', )),
    Case('ui', 'a tracking server (it serves its own UI)', f'ui --tracking-uri {DEAD}',
         (DEAD, )),
    Case('ui', '--port already in use', 'ui --tracking-uri {w.uri} --port {w.busy}',
         ('--port', '{w.busy}')),
]


def coco(images=((1, 64), (2, 64)), annotations=((1, 1, 1), (2, 2, 1)), names=None):
    """A COCO file: images (id, size), annotations (id, image id, category id[, bbox]), and
    categories (by default the tiny configs' classes)."""
    names = names or ('circle', 'square', 'triangle', 'cross', 'star')
    return json.dumps(dict(
        images=[dict(id=i, file_name=f'{i}.png', width=s, height=s) for i, s in images],
        annotations=[dict(id=a, image_id=i, category_id=c, bbox=box[0] if box else [1, 1, 8, 8],
                          area=64, iscrowd=0) for a, i, c, *box in annotations],
        categories=[dict(id=k + 1, name=n) for k, n in enumerate(names)]))


class Workspace:
    """The folder every case runs in (its cwd): a small synthetic set, a store with one finished
    `quick` run, and the bad files the cases name."""

    def __init__(self, root):
        self.root = str(root)
        self.synth = osp.join(self.root, 'synth')
        make_synth(self.synth, seed=3, num_train=8, num_val=4)
        self.uri = write_store(osp.join(self.root, 'store'), trials=[('quick', {}, (0, ), 30.0)],
                               broken=None, steps=2)['uri']
        files = {
            'syntax.py': 'x = (\n', 'latin1.py': b'name = "\xe9"\n', 'config.txt': 'x = 1\n',
            'empty.py': '', 'notes.pth': 'not a checkpoint\n', 'empty.json': '',
            'latin1.json': b'{"images": "\xe9"}', 'cut.json': '{"images": [',
            'list.json': '[]', 'latin1.odgt': b'{"ID": "\xe9"}\n',
            'no_fbox.odgt': '{"ID": "a", "gtboxes": [{"tag": "person", "hbox": [0, 0, 4, 4]}]}\n',
            'negative.json': coco(annotations=((1, 1, 1), (2, 2, 1, [1, 1, -8, 8]))),
            'repeated_image.json': coco(images=((1, 64), (1, 32))),
            'repeated_ann.json': coco(annotations=((7, 1, 1), (7, 2, 1))),
            'other_classes.json': coco(names=('dog', 'cat')),
            'no_boxes.json': coco(annotations=()),
            'broken.yaml': 'scales: {tiny: {resources: {CPU: 1}}\n',
            'latin1.yaml': b'description: "\xe9"\n',
            'axis.yaml': 'grid: {lamda0: [1, 7]}\nscales: {tiny: {resources: {CPU: 1}}}\n',
            'ok.yaml': SUITE % json.dumps(OFFLINE),
            'no_weights.yaml': SUITE % json.dumps({**OFFLINE, 'load_from': f'{self}/nowhere.pth'}),
            f'export_cut/runs/{CUT_RUN}/run.json': EXPORTED[:40],
            f'export_plain/runs/{CUT_RUN}/run.json': EXPORTED,
            f'export_plain/runs/{CUT_RUN}/metrics.csv.gz': 'key,step,timestamp,value\n',
            'no_data.yaml': SUITE % json.dumps({
                **OFFLINE, 'train_dataloader.dataset.data_root': f'{self}/nowhere/'}),
        }
        for name, content in files.items():
            os.makedirs(osp.dirname(osp.join(self.root, name)), exist_ok=True)
            with open(osp.join(self.root, name), 'wb' if isinstance(content, bytes) else 'w') as f:
                f.write(content)
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen()
        self.busy = self.listener.getsockname()[1]

    def __str__(self):
        return self.root

    def normalized(self, text: str) -> str:
        """TEXT as docs/errors.md shows it, without this machine's temporary paths."""
        return text.replace(self.root, 'TMP').replace(str(self.busy), 'PORT')

    def records(self):
        """(experiments, runs) in the store, deleted ones included."""
        client = MlflowClient(self.uri)
        experiments = client.search_experiments(view_type=ViewType.ALL)
        runs = client.search_runs([e.experiment_id for e in experiments],
                                  run_view_type=ViewType.ALL, max_results=50000)
        return len(experiments), len(runs)


@pytest.fixture(scope='module')
def w(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        workspace = Workspace(tmp_path_factory.mktemp('bad_input'))
        mp.setenv('PRM_RGA_SYNTH', workspace.synth)  # the tiny configs' data, in every process
        mp.chdir(workspace.root)
        yield workspace
        workspace.listener.close()


def run_case(case, w):
    """(exit code, stdout + stderr, stderr) of the case's command line. In this process the
    streams are redirected rather than captured by pytest's fixtures, whose files close after
    each test while mmengine's logger, made once, keeps writing to the first one."""
    argv = case.argv.format(w=w).split()
    if case.process:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
        done = subprocess.run([sys.executable, '-m', 'prm_rga_cli', *argv], cwd=w.root, env=env,
                              capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout + done.stderr, done.stderr
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse's refusals
            code = stop.code
    return code, out.getvalue() + err.getvalue(), err.getvalue()


def row(case, message: str) -> str:
    message = message.replace('|', '\\|')  # a pipe would end the cell
    return f'| `{case.command}` | {case.input} | {message} | {case.code} |'


ROWS = {}  # case index -> its doc row, as run


@pytest.mark.parametrize('index', range(len(CASES)),
                         ids=[f'{c.command}: {c.input}' for c in CASES])
def test_bad_input_is_refused_with_its_name(index, w):
    case = CASES[index]
    before = w.records() if case.mlflow else None
    code, output, err = run_case(case, w)
    lines = [line for line in err.splitlines() if line.strip()]
    message = lines[-1] if lines else ''
    assert code == case.code, output
    assert 'Traceback' not in output, output
    for name in case.names:
        assert name.format(w=w) in message, message
    if case.mlflow:
        assert w.records() == before, 'the store holds a new run or experiment'
    ROWS[index] = row(case, w.normalized(message))
    if not WRITE:
        assert ROWS[index] in doc_rows(), f'docs/errors.md lacks (or differs from) {ROWS[index]}'


def doc_rows() -> list:
    with open(DOC, encoding='utf-8') as f:
        return [line.rstrip('\n') for line in f if line.startswith('| `')]


HEADER = """# Bad input

Every input `prm-rga` refuses, with the message it prints (the last line of its stderr; `TMP`
stands for the folder the command ran in) and its exit status: 2 for bad input, refused before
anything starts, no traceback, and nothing recorded in MLflow; 1 for a report written without
results. Generated from the cases of `tests/test_bad_input.py`, which check every row
(`PRM_RGA_WRITE_ERRORS=1 pytest tests/test_bad_input.py` rewrites this file).

| command | input | message | exit |
|---|---|---|---|
"""


def test_the_doc_is_the_cases():
    """Last in the file: with PRM_RGA_WRITE_ERRORS=1 it writes the doc from the rows the cases
    produced; else the doc's rows are exactly the cases, in order."""
    if WRITE:
        assert len(ROWS) == len(CASES), 'run every case to write the doc'
        with open(DOC, 'w', encoding='utf-8') as f:
            f.write(HEADER + ''.join(ROWS[i] + '\n' for i in range(len(CASES))))
    cases = [(f'`{c.command}`', c.input, str(c.code)) for c in CASES]
    rows = [tuple(cell.strip() for cell in re.split(r'(?<!\\)\|', line)[1:-1])
            for line in doc_rows()]
    assert [(r[0], r[1], r[3]) for r in rows] == cases
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        assert f'{len(CASES)} refused inputs' in f.read()
