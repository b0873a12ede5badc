"""`prm-rga train|test|data`: the detector library's commands. Declared here, not in `prm_rga`,
because importing any module of that package loads torch and mmdet; the handlers live there."""
from pathlib import Path

from mmengine.config import DictAction


def _common_args(parser) -> None:
    parser.add_argument('config', help='an mmdet config file, e.g. experiments/configs/tiny/...')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. model.roi_head.test_head=0')


def add_commands(subparsers) -> None:
    p = subparsers.add_parser('train', help='train a detector from a config')
    _common_args(p)
    p.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT',
                   help='resume from CHECKPOINT, or from the latest one in the work dir')
    p.set_defaults(func='prm_rga.train:train')
    p = subparsers.add_parser('test', help='evaluate a trained detector on the test split')
    _common_args(p)
    p.add_argument('--checkpoint', help='weights to load (else the config\'s load_from)')
    p.add_argument('--test-head', type=int, help='predict with this PRM head alone')
    p.set_defaults(func='prm_rga.train:test')

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
