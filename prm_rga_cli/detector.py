"""`prm-rga train|test|data`: the detector library's commands. Declared here, not in `prm_rga`,
because importing any module of that package loads torch and mmdet; the handlers live there,
and in `experiments.rerun` for a tracked run (``--run``), which needs MLflow."""
import importlib
from pathlib import Path

from mmengine.config import DictAction


def _common_args(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('config', nargs='?',
                        help='an mmdet config file, e.g. experiments/configs/tiny/...')
    source.add_argument('--run', metavar='RUN_ID', help='an MLflow run of a suite trial: its '
                        'config.py and checkpoint.pth from the tracking store')
    parser.add_argument('--tracking-uri', metavar='URI', help='with --run: the MLflow store '
                        '(default: sqlite:///<cwd>/mlruns/mlflow.db; on a cluster an http:// '
                        'server)')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: '
                        'work_dirs/<config name>; with --run work_dirs/<command>-<run id>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. model.roi_head.test_head=0')


def add_commands(subparsers) -> None:
    p = subparsers.add_parser('train', help='train a detector from a config')
    _common_args(p)
    p.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT',
                   help='resume from CHECKPOINT, or from the latest one in the work dir')
    p.set_defaults(func='prm_rga_cli.detector:train')
    p = subparsers.add_parser('test', help='evaluate a trained detector on the test split')
    _common_args(p)
    p.add_argument('--checkpoint', help='weights to load (else the config\'s load_from; with '
                   '--run the run\'s checkpoint.pth)')
    p.add_argument('--test-head', type=int, help='predict with this PRM head alone')
    p.set_defaults(func='prm_rga_cli.detector:test')

    data = subparsers.add_parser('data', help='prepare datasets')
    sub = data.add_subparsers(dest='data_command', required=True, metavar='DATASET')
    p = sub.add_parser(
        'synth', help='generate (or reuse) the embedded synthetic dataset',
        description='Write the deterministic synthetic detection set (COCO format, or CrowdHuman '
        '.odgt plus COCO with --crowd). An existing set with the same arguments is reused.')
    p.add_argument('--out', required=True, type=Path, help='dataset directory')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--train', type=int, default=800, dest="num_train", help='training images')
    p.add_argument('--val', type=int, default=200, dest='num_val', help='validation images')
    p.add_argument('--image-size', type=int, default=128, help='square image side in pixels')
    p.add_argument('--crowd', action='store_true', help='crowd-person variant (CrowdHuman .odgt)')
    p.add_argument('--force', action='store_true', help='regenerate an existing synthetic set')
    p.set_defaults(func='prm_rga.datasets.synth:synth_command')


def _handler(args, name: str):
    """The command's handler: `prm_rga.train` for a config file, `experiments.rerun` (MLflow)
    for ``--run``."""
    module = 'experiments.rerun' if args.run else 'prm_rga.train'
    return getattr(importlib.import_module(module), name)(args)


def train(args) -> int:
    return _handler(args, 'train')


def test(args) -> int:
    return _handler(args, 'test')
