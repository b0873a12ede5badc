"""Per-image evaluation records: what it takes to recompute COCO AP on any multiset of the val
images (the paired bootstrap, ``prm_rga.metrics.bootstrap``) long after the trial ended.

``<work_dir>/artifacts/eval_records.npz``, rewritten at every evaluation (the last one stays),
from ``GTCountSubsetMetric``'s predictions:

- ``sources`` str (S,): ``model`` (the detector as evaluated: the PRM ensemble, or a
  ``ProposalEnsemble``), then ``h0``, ``h1``, ... (each PRM head alone) when the metric had them.
- ``image_id`` int64 (n,): the val images, ascending; ``num_dets`` int32 (S, n): detections of
  each source per image; ``bbox`` uint16 (N, 4) x1y1x2y2, ``score`` float32 (N,) as predicted,
  ``label`` uint8 (uint16 past 256 classes) (N,) class index, in source-major then image order;
  ``category_id`` int64 (C,): COCO category of each class index. A box coordinate is
  ``bbox_origin[i] + bbox * bbox_step[i]`` (float64 (n,) each, per image i): 65,535 steps over
  the span of the image's box coordinates (all sources), so each is within half a step (0.005
  px on a 640-px image) of the prediction; scores are exact, so the ranking is the metric's.
  The bootstrap is exact for the detections the record holds; their AP can differ from the
  logged one where a box moved across an IoU threshold. Records of before (float32 ``bbox`` as
  predicted, int16 ``label``, no ``bbox_origin``/``bbox_step``) load as they are.
- the GT they were evaluated on, so the record alone suffices: ``gt_image_id`` (n,) and per
  annotation ``gt_ann_image_id``, ``gt_category_id``, ``gt_bbox`` float64 (xywh), ``gt_area``,
  ``gt_iscrowd``; ``gt_sha256``: the GT fingerprint (``gt_fingerprint``) that pairs records of
  different runs only when they were evaluated on the same val set.
"""
import contextlib
import hashlib
import io
import os
import os.path as osp

import numpy as np
from mmengine.dist import master_only
from mmengine.hooks import Hook
from pycocotools.coco import COCO

from mmdet.registry import HOOKS
from prm_rga.errors import InputError
from prm_rga.metrics.gt_count import paused_gc

FILE = 'eval_records.npz'
FIELDS = ('sources', 'image_id', 'num_dets', 'bbox', 'score', 'label', 'category_id',
          'gt_image_id', 'gt_ann_image_id', 'gt_category_id', 'gt_bbox', 'gt_area',
          'gt_iscrowd', 'gt_sha256')
STEPS = 65535  # uint16 box coordinates over each image's span


def gt_arrays(coco):
    """The GT of a pycocotools COCO as arrays (images ascending, annotations by id)."""
    anns = [coco.anns[k] for k in sorted(coco.anns)]
    return dict(
        gt_image_id=np.array(sorted(coco.getImgIds()), dtype=np.int64),
        gt_ann_image_id=np.array([a['image_id'] for a in anns], dtype=np.int64),
        gt_category_id=np.array([a['category_id'] for a in anns], dtype=np.int64),
        gt_bbox=np.array([a['bbox'] for a in anns], dtype=np.float64).reshape(-1, 4),
        gt_area=np.array([a['area'] for a in anns], dtype=np.float64),
        gt_iscrowd=np.array([a.get('iscrowd', 0) for a in anns], dtype=np.int8),
        category_id=np.array(sorted(coco.getCatIds()), dtype=np.int64))


def gt_fingerprint(arrays):
    """sha256 over the GT arrays: equal for the same images, boxes, areas, crowd flags and
    categories, whatever file they came from."""
    h = hashlib.sha256()
    for key in ('gt_image_id', 'gt_ann_image_id', 'gt_category_id', 'gt_bbox', 'gt_area',
                'gt_iscrowd', 'category_id'):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def record_arrays(coco, cat_ids, img_ids, sources):
    """The record's arrays. ``sources``: name -> per-image predictions (dicts of ``bboxes``
    xyxy, ``scores``, ``labels`` arrays) in the order of ``img_ids``; ``cat_ids`` the COCO
    category of each class index."""
    gt = gt_arrays(coco)
    gt['category_id'] = np.asarray(cat_ids, dtype=np.int64)
    order = np.argsort(img_ids, kind='stable')
    per = [[preds[i] for i in order] for preds in sources.values()]

    def cat(key, dtype, shape):
        parts = [np.asarray(p[key], dtype=dtype).reshape(shape) for ps in per for p in ps]
        return np.concatenate(parts) if parts else np.zeros((0, *shape[1:]), dtype)

    num = np.array([[len(p['scores']) for p in ps] for ps in per], np.int32)
    box = cat('bboxes', np.float32, (-1, 4)).astype(np.float64)
    img = _image_of(num)
    origin, hi = np.full(len(order), np.inf), np.full(len(order), -np.inf)
    np.minimum.at(origin, img, box.min(1, initial=np.inf))
    np.maximum.at(hi, img, box.max(1, initial=-np.inf))
    step = np.where(hi > origin, (hi - origin) / STEPS, 1.0)
    return dict(gt, sources=np.array(list(sources)), gt_sha256=np.array(gt_fingerprint(gt)),
                image_id=np.asarray(img_ids, dtype=np.int64)[order], num_dets=num,
                bbox=np.rint((box - origin[img, None]) / step[img, None]).astype(np.uint16),
                bbox_origin=np.where(hi >= origin, origin, 0.0), bbox_step=step,
                score=cat('scores', np.float32, (-1,)),
                label=cat('labels', np.uint8 if len(cat_ids) <= 256 else np.uint16, (-1,)))


def _image_of(num_dets):
    """Image position of every detection, source-major then image order."""
    return np.repeat(np.tile(np.arange(num_dets.shape[1]), len(num_dets)), num_dets.ravel())


def atomic_savez(path, arrays):
    """``np.savez_compressed`` through a temporary file: a half-written file never stands as
    the record (or any other npz artifact)."""
    tmp = path + '.tmp.npz'
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_record(path):
    """``(coco_gt, {source: COCO result dicts}, gt_sha256)`` from a record file.

    Result dicts are those the metric evaluated (xywh from the float32 xyxy, as mmdet's
    CocoMetric converts them). InputError names the file and the field at fault.
    """
    if not osp.isfile(path):
        raise InputError(f'{path}: no such evaluation record')
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise InputError(f'{path}: not an evaluation record ({e})') from None
    missing = [k for k in FIELDS if k not in data]
    if missing:
        raise InputError(f'{path}: evaluation record without field(s) {", ".join(missing)}')
    if str(data['gt_sha256']) != gt_fingerprint(data):
        raise InputError(f'{path}: gt_sha256 does not match the GT arrays in the record')
    num = data['num_dets']
    if num.shape != (len(data['sources']), len(data['image_id'])) or num.sum() != len(
            data['score']) or not len(data['bbox']) == len(data['label']) == len(data['score']):
        raise InputError(f'{path}: num_dets {num.shape} does not fit sources, image_id and the '
                         f'{len(data["score"])} detections')
    cats = data['category_id']
    if len(data['label']) and (data['label'].min() < 0 or data['label'].max() >= len(cats)):
        raise InputError(f'{path}: label outside the {len(cats)} classes of category_id')
    boxes = data['bbox']
    if boxes.dtype == np.uint16:  # coordinates in steps over each image's span
        missing = [k for k in ('bbox_origin', 'bbox_step')
                   if k not in data or data[k].shape != num.shape[1:]]
        if missing:
            raise InputError(f'{path}: uint16 bbox without a value per image in '
                             f'{", ".join(missing)}')
        img = _image_of(num)
        boxes = data['bbox_origin'][img, None] + boxes * data['bbox_step'][img, None]
    coco = COCO()
    coco.dataset = dict(
        images=[dict(id=int(i)) for i in data['gt_image_id']],
        categories=[dict(id=int(c)) for c in cats],
        annotations=[dict(id=n, image_id=int(i), category_id=int(c), bbox=b.tolist(),
                          area=float(a), iscrowd=int(z))
                     for n, (i, c, b, a, z) in enumerate(zip(
                         data['gt_ann_image_id'], data['gt_category_id'], data['gt_bbox'],
                         data['gt_area'], data['gt_iscrowd']), 1)])
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    images = data['image_id'][_image_of(num)].tolist()
    categories = cats[data['label']].tolist()
    boxes, scores = boxes.tolist(), data['score'].tolist()
    bounds = np.concatenate([[0], np.cumsum(num.sum(1))]).tolist()
    dets = {}
    with paused_gc():
        for s, source in enumerate(data['sources']):
            part = slice(bounds[s], bounds[s + 1])
            dets[str(source)] = [
                dict(image_id=i, category_id=c, bbox=[x1, y1, x2 - x1, y2 - y1], score=sc)
                for i, c, (x1, y1, x2, y2), sc in zip(images[part], categories[part],
                                                      boxes[part], scores[part])]
    return coco, dets, str(data['gt_sha256'])


@HOOKS.register_module()
class EvalRecordHook(Hook):
    """Writes ``artifacts/eval_records.npz`` (module doc) after every validation and test
    epoch, from the evaluator's ``GTCountSubsetMetric``; the last evaluation's stays."""

    priority = 'LOW'

    @master_only
    def after_val_epoch(self, runner, metrics=None):
        self._write(runner, runner.val_evaluator)

    @master_only
    def after_test_epoch(self, runner, metrics=None):
        self._write(runner, runner.test_evaluator)

    def _write(self, runner, evaluator):
        records = [m.last_record for m in evaluator.metrics
                   if getattr(m, 'last_record', None) is not None]
        if not records:
            runner.logger.warning('EvalRecordHook: no GTCountSubsetMetric in the evaluator, '
                                  'no evaluation record written')
            return
        out_dir = osp.join(runner.work_dir, 'artifacts')
        os.makedirs(out_dir, exist_ok=True)
        atomic_savez(osp.join(out_dir, FILE), record_arrays(**records[0]))
