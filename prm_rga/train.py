"""`prm-rga train` and `prm-rga test`: thin layers on mmengine's Runner that check the config
and the data it names before anything is built, so bad input fails fast with the field or file
named (the annotation files, their classes, the pretrained weights), and that create the synthetic
data set a config asks for (once; it is cached)."""
import argparse
import json
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

from prm_rga.errors import InputError, check_creatable_dir, read_text
from prm_rga_eval.gt_count import check_xywh
from prm_rga.pretrained import check_checkpoint, check_pretrained


def load_config(path: str, cfg_options=None) -> Config:
    if not osp.isfile(path):
        raise InputError(f'config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, KeyError, NameError, TypeError, ValueError, OSError) as err:
        raise InputError(f'{path}: cannot read config: {err}') from err
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if not isinstance(cfg.get('model'), dict):
        raise InputError(f'{path}: not a detector config (it defines no model)')
    return cfg


def _check_annotations(path: str, field: str, dataset=None) -> None:
    """The annotation file exists, is well-formed COCO JSON or CrowdHuman .odgt, and a COCO
    file can train the dataset config (when it is a dataset's, not an evaluator's)."""
    if not osp.isfile(path):
        raise InputError(f'{field}: annotation file not found: {path}')
    if path.endswith('.odgt'):
        from prm_rga_eval.crowdhuman import load_odgt
        load_odgt(path)
        return
    data = read_coco(path, field)
    for k, ann in enumerate(data['annotations']):
        check_xywh(ann.get('bbox') if isinstance(ann, dict) else None,
                   f'{field}: {path}, annotations[{k}].bbox')
    for key in ('images', 'annotations'):
        _check_unique_ids(data[key], key, f'{field}: {path}')
    if dataset is not None:
        _check_classes(data, f'{field}: {path}', dataset)


def read_coco(path: str, field: str) -> dict:
    """A COCO annotation file's content; InputError for a file that is empty, not UTF-8, not
    JSON or lacks the COCO keys."""
    text = read_text(path, field)
    if not text.strip():
        raise InputError(f'{field}: {path} is empty')
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f'{field}: {path} is not valid JSON: {err}') from err
    missing = [key for key in ('images', 'annotations', 'categories')
               if not isinstance(data, dict) or key not in data]
    if missing:
        raise InputError(f'{field}: {path} is not a COCO annotation file (missing {missing})')
    return data


def _check_unique_ids(items: list, key: str, where: str) -> None:
    """pycocotools indexes images and annotations by id: a repeated one silently replaces the
    first (its boxes go to the wrong image, or an annotation is counted twice)."""
    first = {}
    for k, item in enumerate(items):
        id_ = item.get('id') if isinstance(item, dict) else None
        if id_ in first:
            raise InputError(f'{where}: {key}[{k}] repeats the id {id_!r} of {key}[{first[id_]}]; '
                             f'{key} ids must be unique')
        first[id_] = k


def _names(names) -> str:
    names = list(names)
    shown = ', '.join(map(str, names[:12]))
    return f'({shown}{f", ... {len(names)} in all" if len(names) > 12 else ""})'


def _config_classes(dataset):
    """The classes the dataset config loads: its metainfo's, else its dataset type's."""
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is None and isinstance(dataset.get('type'), str):
        from mmdet.registry import DATASETS
        classes = (getattr(DATASETS.get(dataset.type), 'METAINFO', None) or {}).get('classes')
    return classes


def _check_classes(data: dict, where: str, dataset) -> None:
    """The file has every class of the config (mmdet silently drops the others and, when none
    is left, fails deep in the data loader), and a training split keeps at least one image
    after mmdet's filter (``filter_empty_gt``: an annotation of the classes; ``min_size``)."""
    classes = _config_classes(dataset)
    if not classes:
        return
    ids = {c.get('name'): c.get('id') for c in data['categories'] if isinstance(c, dict)}
    listing = f"the config's classes {_names(classes)}, the file's categories {_names(ids)}"
    absent = [c for c in classes if c not in ids]
    if absent:
        raise InputError(f"{where}: its categories do not include {len(absent)} of the config's "
                         f'{len(classes)} classes {_names(absent)}; {listing}. Set the '
                         "dataset's metainfo.classes (and the heads' num_classes) to the "
                         'classes to train, or use a file that has them')
    if dataset.get('test_mode'):
        return
    filter_cfg = dict(dataset.get('filter_cfg') or {})
    wanted = {ids[c] for c in classes}
    annotated = {a.get('image_id') for a in data['annotations']
                 if isinstance(a, dict) and a.get('category_id') in wanted}
    kept = [img for img in data['images']
            if (img.get('id') in annotated or not filter_cfg.get('filter_empty_gt'))
            and min(img.get('width', 0), img.get('height', 0)) >= filter_cfg.get('min_size', 0)]
    if not kept:
        raise InputError(f'{where}: no training image is left after filtering '
                         f"(filter_cfg={filter_cfg}): {len(data['images'])} images, "
                         f"{len(annotated)} with a box of the config's classes; {listing}")


def make_synthetic(cfg: Config) -> None:
    """The synthetic set and the backbone pretrained on synthetic windows that the config
    names, made once (both are cached; concurrent first users wait for one maker)."""
    if cfg.get('synth_data'):
        from prm_rga.datasets import make_synth
        make_synth(**cfg.synth_data)
    if cfg.get('synth_backbone'):
        from prm_rga.synth_backbone import make_synth_backbone
        make_synth_backbone(backbone=cfg.model.backbone, **cfg.synth_backbone)


def data_files(cfg: Config) -> list:
    """(field, dataset config or None, path) of every annotation file the config reads: each
    split's dataset (inside wrappers such as RepeatDataset) and each evaluator's ``ann_file``."""
    found = []
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(split) or {}).get('dataset')
        while dataset is not None and 'dataset' in dataset:  # wrappers (RepeatDataset, ...)
            dataset = dataset.dataset
        if dataset and dataset.get('ann_file'):
            found.append((f'{split}.dataset', dataset,
                          osp.join(dataset.get('data_root') or '', dataset.ann_file)))
    for split in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(split) or []
        listed = isinstance(evaluators, list)
        for k, evaluator in enumerate(evaluators if listed else [evaluators]):
            path = evaluator.get('ann_file')  # often the val set's own file, checked once
            if path and osp.normpath(path) not in {osp.normpath(p) for *_, p in found}:
                found.append((f'{split}[{k}]' if listed else split, None, path))
    return found


def check_dataset(field: str, dataset, path: str) -> None:
    """One entry of `data_files`: the annotation file (and a dataset's image folder) is usable."""
    _check_annotations(path, f'{field}.ann_file', dataset)
    if dataset is None:
        return
    img_dir = osp.join(dataset.get('data_root') or '',
                       (dataset.get('data_prefix') or {}).get('img', ''))
    if not osp.isdir(img_dir):
        raise InputError(f'{field}.data_prefix.img: image folder not found: {img_dir}')


def check_data(cfg: Config) -> None:
    """Every dataset the config will load exists on disk; what it makes itself is made."""
    make_synthetic(cfg)
    for entry in data_files(cfg):
        check_dataset(*entry)


def make_runner(cfg: Config, args: argparse.Namespace) -> Runner:
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    check_creatable_dir(cfg.work_dir, 'work dir')
    check_data(cfg)
    return Runner.from_cfg(cfg)


def train(args: argparse.Namespace) -> int:
    train_config(load_config(args.config, args.cfg_options), args)
    return 0


def train_config(cfg: Config, args: argparse.Namespace) -> None:
    """Trains CFG (loaded, perhaps extended by the caller: `prm-rga train --run` adds its
    tracking backend) with ``args.resume`` and ``args.work_dir``."""
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    check_pretrained(cfg)
    make_runner(cfg, args).train()


def test(args: argparse.Namespace) -> int:
    evaluate(args)
    return 0


def evaluate(args: argparse.Namespace) -> dict:
    """`prm-rga test`'s evaluation; returns the test metrics (``val/bbox_mAP``, ...)."""
    cfg = load_config(args.config, args.cfg_options)
    if args.checkpoint:
        check_checkpoint(args.checkpoint, '--checkpoint')
        cfg.load_from = args.checkpoint
    if args.test_head is not None:
        cfg.model.roi_head.test_head = args.test_head
    return make_runner(cfg, args).test()

