"""Per-image evaluation records: what it takes to recompute COCO AP on any multiset of the val
images (the paired bootstrap, ``prm_rga_eval.bootstrap``) long after the trial ended.

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

A CrowdHuman evaluation (``CrowdHumanMMRMetric``) writes ``crowd_records.npz`` instead: its gt
records and detection records per image (``crowd_record_arrays``, fields in
docs/mlflow-schema.md), from which ``load_crowd_record`` gives back what the metric evaluated.
"""
import contextlib
import hashlib
import io
import os
import os.path as osp

import numpy as np
from pycocotools.coco import COCO

from prm_rga_errors import InputError
from prm_rga_eval.crowdhuman import is_person
from prm_rga_eval.gt_count import paused_gc

FILE = 'eval_records.npz'
FIELDS = ('sources', 'image_id', 'num_dets', 'bbox', 'score', 'label', 'category_id',
          'gt_image_id', 'gt_ann_image_id', 'gt_category_id', 'gt_bbox', 'gt_area',
          'gt_iscrowd', 'gt_sha256')
GT_KEYS = ('gt_image_id', 'gt_ann_image_id', 'gt_category_id', 'gt_bbox', 'gt_area',
           'gt_iscrowd', 'category_id')
STEPS = 65535  # uint16 box coordinates over each image's span
CROWD_FILE = 'crowd_records.npz'
CROWD_GT_KEYS = ('image_id', 'gt_width', 'gt_height', 'gt_num_boxes', 'gt_fbox', 'gt_person')
CROWD_FIELDS = (*CROWD_GT_KEYS, 'gt_sha256', 'width', 'height', 'num_dets', 'bbox', 'score')


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


def gt_fingerprint(arrays, keys=GT_KEYS):
    """sha256 over the GT arrays: equal for the same images, boxes, areas, crowd flags and
    categories (CrowdHuman: ``CROWD_GT_KEYS``), whatever file they came from."""
    h = hashlib.sha256()
    for key in keys:
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
    data = _read(path, FIELDS, GT_KEYS)
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


def _read(path, fields, gt_keys):
    """A record file's arrays, with its fields and its GT fingerprint checked."""
    if not osp.isfile(path):
        raise InputError(f'{path}: no such evaluation record')
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise InputError(f'{path}: not an evaluation record ({e})') from None
    missing = [k for k in fields if k not in data]
    if missing:
        raise InputError(f'{path}: evaluation record without field(s) {", ".join(missing)}')
    if str(data['gt_sha256']) != gt_fingerprint(data, gt_keys):
        raise InputError(f'{path}: gt_sha256 does not match the GT arrays in the record')
    return data


def crowd_record_arrays(gt_records, det_records):
    """The record of a CrowdHuman evaluation (``CrowdHumanMMRMetric``): the gt records as the
    benchmark reads them (full-body boxes, which are persons, the image size when given) and
    the detection records the metric made, per gt image."""
    ids = [str(r['ID']) for r in gt_records]
    gt = dict(image_id=np.array(ids, dtype=str),
              gt_num_boxes=np.array([len(r['gtboxes']) for r in gt_records], np.int32),
              gt_fbox=np.array([b['fbox'] for r in gt_records for b in r['gtboxes']],
                               np.float64).reshape(-1, 4),
              gt_person=np.array([is_person(b) for r in gt_records for b in r['gtboxes']],
                                 bool))
    by_id = {str(r['ID']): r for r in det_records}
    dets = [by_id.get(i, {}) for i in ids]
    for key, records in (('gt_', gt_records), ('', dets)):
        for side in ('width', 'height'):
            gt[key + side] = np.array([r.get(side, np.nan) for r in records], np.float64)
    boxes = [b['box'] for r in dets for b in r.get('dtboxes', ())]
    return dict(gt, gt_sha256=np.array(gt_fingerprint(gt, CROWD_GT_KEYS)),
                num_dets=np.array([len(r.get('dtboxes', ())) for r in dets], np.int32),
                bbox=np.array([[x, y, x + w, y + h] for x, y, w, h in boxes],
                              np.float32).reshape(-1, 4),
                score=np.array([b['score'] for r in dets for b in r.get('dtboxes', ())],
                               np.float32))


def load_crowd_record(path):
    """``(gt_records, det_records, gt_sha256)`` from a CrowdHuman record, as
    ``crowdhuman_mmr`` / ``paired_bootstrap_mmr`` take them (persons tagged ``person``, the
    other boxes ``ignore``); InputError names the file and the field at fault."""
    data = _read(path, CROWD_FIELDS, CROWD_GT_KEYS)
    n, num, gt_num = len(data['image_id']), data['num_dets'], data['gt_num_boxes']
    if (num.shape != (n,) or not num.sum() == len(data['score']) == len(data['bbox'])
            or gt_num.shape != (n,) or gt_num.sum() != len(data['gt_fbox'])):
        raise InputError(f'{path}: num_dets / gt_num_boxes do not fit image_id and the boxes')
    fbox, person = data['gt_fbox'].tolist(), data['gt_person'].tolist()
    x1, y1, x2, y2 = data['bbox'].T.tolist() if len(data['bbox']) else ([],) * 4
    scores = data['score'].tolist()
    gt_at, det_at = np.cumsum(gt_num).tolist(), np.cumsum(num).tolist()
    gts, dets = [], []
    for i, image in enumerate(data['image_id'].tolist()):
        lo, hi = (gt_at[i - 1] if i else 0), gt_at[i]
        gt = dict(ID=image, gtboxes=[dict(fbox=fbox[k], tag='person' if person[k] else 'ignore')
                                     for k in range(lo, hi)])
        det = dict(ID=image)
        for record, key in ((gt, 'gt_'), (det, '')):
            if not np.isnan(data[key + 'width'][i]):
                record.update(width=float(data[key + 'width'][i]),
                              height=float(data[key + 'height'][i]))
        lo, hi = (det_at[i - 1] if i else 0), det_at[i]
        det['dtboxes'] = [dict(box=[x1[k], y1[k], x2[k] - x1[k], y2[k] - y1[k]],
                               score=scores[k]) for k in range(lo, hi)]
        gts.append(gt)
        dets.append(det)
    return gts, dets, str(data['gt_sha256'])
