"""`prm-rga train` and `prm-rga test`: thin layers on mmengine's Runner that check the config
and the data it names before anything is built, so bad input fails fast with the field or file
named, and that create the synthetic data set a config asks for (once; it is cached)."""
import argparse
import json
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from prm_rga.errors import InputError
from prm_rga.metrics.gt_count import check_xywh


def load_config(path: str, cfg_options=None) -> Config:
    if not osp.isfile(path):
        raise InputError(f'config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, KeyError, NameError, TypeError, ValueError) as err:
        raise InputError(f'{path}: cannot read config: {err}') from err
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _check_annotations(path: str, field: str) -> None:
    """The annotation file exists and is well-formed COCO JSON or CrowdHuman .odgt."""
    if not osp.isfile(path):
        raise InputError(f'{field}: annotation file not found: {path}')
    if path.endswith('.odgt'):
        from prm_rga.metrics.crowdhuman import load_odgt
        load_odgt(path)
        return
    try:
        with open(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f'{field}: {path} is not valid JSON: {err}') from err
    missing = [key for key in ('images', 'annotations', 'categories') if key not in data]
    if not isinstance(data, dict) or missing:
        raise InputError(f'{field}: {path} is not a COCO annotation file (missing {missing})')
    for k, ann in enumerate(data['annotations']):
        check_xywh(ann.get('bbox') if isinstance(ann, dict) else None,
                   f'{field}: {path}, annotations[{k}].bbox')


def check_data(cfg: Config) -> None:
    """Every dataset the config will load exists on disk; the synthetic set is made if needed."""
    if cfg.get('synth_data'):
        from prm_rga.datasets import make_synth
        make_synth(**cfg.synth_data)
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(split) or {}).get('dataset')
        while dataset is not None and 'dataset' in dataset:  # wrappers (RepeatDataset, ...)
            dataset = dataset.dataset
        if not dataset or not dataset.get('ann_file'):
            continue
        root = dataset.get('data_root') or ''
        _check_annotations(osp.join(root, dataset.ann_file), f'{split}.dataset.ann_file')
        img_dir = osp.join(root, (dataset.get('data_prefix') or {}).get('img', ''))
        if not osp.isdir(img_dir):
            raise InputError(f'{split}.dataset.data_prefix.img: image folder not found: {img_dir}')


def make_runner(cfg: Config, args: argparse.Namespace) -> Runner:
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    check_data(cfg)
    return Runner.from_cfg(cfg)


def train(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.cfg_options)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    runner = make_runner(cfg, args)
    runner.train()
    return 0


def test(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.cfg_options)
    if args.checkpoint:
        if not osp.isfile(args.checkpoint):
            raise InputError(f'checkpoint not found: {args.checkpoint}')
        cfg.load_from = args.checkpoint
    if args.test_head is not None:
        cfg.model.roi_head.test_head = args.test_head
    runner = make_runner(cfg, args)
    runner.test()
    return 0


def _common_args(parser: argparse.ArgumentParser) -> None:
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
    p.set_defaults(func=train)
    p = subparsers.add_parser('test', help='evaluate a trained detector on the test split')
    _common_args(p)
    p.add_argument('--checkpoint', help='weights to load (else the config\'s load_from)')
    p.add_argument('--test-head', type=int, help='predict with this PRM head alone')
    p.set_defaults(func=test)
