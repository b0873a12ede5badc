"""CrowdHuman mMR and AP50, computed as the benchmark's own evaluation does.

Published CrowdHuman numbers (CrowdHuman paper, CrowdDet, the paper's Table 7) come from the
benchmark's ``APMRToolkits`` (CrowdDet's ``lib/evaluate``, mirrored by mmdet's
``CrowdHumanMetric``) in full-body mode; this module follows it step by step:

- gt: ``fbox`` (xywh); a box is a person iff ``tag == 'person'`` and ``extra.ignore == 0``
  (missing ``extra``/``ignore`` = 0); every other box is an ignore region.
- image size: ``width``/``height`` of the gt record, else of the detection record (the
  benchmark takes the first record that carries them); when known, gt and detection boxes are
  clipped to the image (x1 to [0, w-1], x2 to [0, w], same for y).
- per image, detections in descending score each take the unmatched person with the highest
  IoU > 0.5 (the first such person in file order on equal IoU); one matching no person is
  dropped when its IoA (intersection / detection area) with some ignore region is > 0.5, else
  it is a false positive. A detection's ``tag`` is not read (body mode reads none).
- all kept detections of all images are ranked by score; at each rank: recall = TP / persons,
  precision = TP / (TP + FP), FPPI = FP / images (every gt record counts as an image).
- mMR: miss rate (1 - recall) at the first rank whose FPPI >= each of the 9 references
  10^-2 .. 10^0, the last rank when none is; geometric mean with log(max(mr, 1e-10)), the
  floor of the Caltech toolbox (the CrowdDet code takes log(mr) and yields 0 for mr = 0).
- AP50: trapezoids between consecutive ranked (recall, precision) points, from the first
  point on, without a point at recall 0, exactly as the benchmark; a perfect detector on n
  persons therefore scores (n - 1) / n.
- ``recall``: recall after all ranked detections.
- no detections kept: mMR 1.0, AP50 0, recall 0.

One deliberate difference: the benchmark breaks score ties by input order; here ties are
broken by box (x1, y1, x2, y2) within an image and by gt-record order across images, so the
result does not depend on the order detections come in. With distinct scores both agree.
IoU/IoA use the benchmark's continuous coordinates (no +1) in float64, denominators floored
at 1e-6 as mmdet's ``bbox_overlaps``.
"""

import json
import math
import os.path as osp
from numbers import Real

import numpy as np

from prm_rga_errors import InputError, read_text

FPPI_REFS = (0.0100, 0.0178, 0.0316, 0.0562, 0.1000, 0.1778, 0.3162, 0.5623, 1.000)
IOU_THR = 0.5
MR_FLOOR = 1e-10


def load_odgt(path):
    """Read a CrowdHuman ``.odgt`` gt file (one JSON record per line), validating every line.

    Blank lines are skipped. Raises InputError naming the file and line (and the box index and
    field) for a missing, empty or non-UTF-8 file, bad JSON, a missing or malformed field, a
    negative box width or height, or a repeated ID.
    """
    if not osp.isfile(path):
        raise InputError(f'{path}: no such .odgt annotation file')
    records, first_line = [], {}
    for n, line in enumerate(read_text(path, '.odgt annotation file').splitlines(), 1):
        if not line.strip():
            continue
        where = f'{path}, line {n}'
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f'{where}: not valid JSON ({e.msg})') from None
        check_gt_record(record, where)
        if record['ID'] in first_line:
            raise InputError(f'{where}: ID {record["ID"]!r} already on line '
                             f'{first_line[record["ID"]]}')
        first_line[record['ID']] = n
        records.append(record)
    if not records:
        raise InputError(f'{path}: the .odgt annotation file is empty (no records)')
    return records


def check_gt_record(record, where):
    """Validate a gt record (``ID``, ``gtboxes`` with ``fbox`` and ``tag``); ``where`` names it."""
    _check_record(record, where)
    for k, box in _boxes(record, 'gtboxes', where):
        _check_xywh(box.get('fbox'), f'{where}: gtboxes[{k}].fbox')
        if not isinstance(box.get('tag'), str):
            raise InputError(f'{where}: gtboxes[{k}].tag is missing or not a string')
        if not isinstance(box.get('extra', {}), dict):
            raise InputError(f'{where}: gtboxes[{k}].extra is not an object')


def is_person(box):
    """The benchmark's rule: a person iff tag 'person' and not flagged ``extra.ignore``."""
    return box['tag'] == 'person' and box.get('extra', {}).get('ignore', 0) == 0


def crowdhuman_mmr(gt_records, det_records):
    """mMR, AP50 and recall (fractions) of ``det_records`` against ``gt_records``.

    Records are ``.odgt`` dicts: gt with ``ID`` and ``gtboxes``, detections with ``ID`` and
    ``dtboxes`` (``box`` xywh, ``score``). Images without a detection record have no
    detections. See the module docstring for the exact protocol.
    """
    per_image, persons = matched_images(gt_records, det_records)
    scores = np.concatenate([s for s, _ in per_image])
    labels = np.concatenate([t for _, t in per_image])
    return mmr_of(labels[np.argsort(-scores, kind='stable')], int(persons.sum()), len(persons))


def matched_images(gt_records, det_records):
    """The per-image half of the evaluation, in gt-record order: per image its kept detections'
    (scores, labels: 1 TP, 0 FP) in its ranking order, and the number of persons per image."""
    gts = {}
    for n, record in enumerate(gt_records):
        check_gt_record(record, f'gt record {n}')
        if record['ID'] in gts:
            raise InputError(f'gt record {n}: ID {record["ID"]!r} appears twice')
        gts[record['ID']] = record
    dets = {}
    for n, record in enumerate(det_records):
        where = f'detection record {n}'
        _check_record(record, where)
        if record['ID'] not in gts:
            raise InputError(f'{where}: ID {record["ID"]!r} is not among the gt IDs')
        if record['ID'] in dets:
            raise InputError(f'{where}: ID {record["ID"]!r} appears twice')
        _check_det_record(record, f'{where} (ID {record["ID"]!r})')
        dets[record['ID']] = record

    per_image, persons = [], []
    for image_id, gt in gts.items():
        det = dets.get(image_id, {})
        size = _image_size(gt, det)
        gt_boxes = _xyxy([b['fbox'] for b in gt['gtboxes']], size)
        person = np.array([is_person(b) for b in gt['gtboxes']], dtype=bool)
        det_boxes = _xyxy([b['box'] for b in det.get('dtboxes', [])], size)
        det_scores = np.array([b['score'] for b in det.get('dtboxes', [])], dtype=np.float64)
        per_image.append(_match_image(det_boxes, det_scores, gt_boxes[person],
                                      gt_boxes[~person]))
        persons.append(int(person.sum()))
    if sum(persons) == 0:
        raise InputError('gt records: no person box (tag "person" without extra.ignore) '
                         'to evaluate against')
    return per_image, np.array(persons)


def mmr_of(labels, num_persons, num_images):
    """mMR, AP50 and recall of detections ranked by score (``labels`` 1 TP, 0 FP)."""
    if len(labels) == 0:
        return {'mMR': 1.0, 'AP50': 0.0, 'recall': 0.0}
    tp = np.cumsum(labels)
    fp = np.cumsum(1 - labels)
    recall = tp / num_persons
    precision = tp / (tp + fp)
    fppi = fp / num_images
    at = np.minimum(np.searchsorted(fppi, FPPI_REFS, side='left'), len(fppi) - 1)
    miss = np.maximum(1.0 - recall[at], MR_FLOOR)
    ap = np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2)
    return {'mMR': float(np.exp(np.log(miss).mean())), 'AP50': float(ap),
            'recall': float(recall[-1])}


def _check_record(record, where):
    if not isinstance(record, dict):
        raise InputError(f'{where}: not a JSON object')
    if not isinstance(record.get('ID'), (str, int)) or isinstance(record.get('ID'), bool):
        raise InputError(f'{where}: field ID is missing or not a string')
    for key in ('width', 'height'):
        if key in record and not (_is_number(record[key]) and record[key] > 0):
            raise InputError(f'{where}: field {key} is not a positive number')


def _check_det_record(record, where):
    for k, box in _boxes(record, 'dtboxes', where):
        _check_xywh(box.get('box'), f'{where}: dtboxes[{k}].box')
        if not _is_number(box.get('score')):
            raise InputError(f'{where}: dtboxes[{k}].score is missing or not a number')


def _boxes(record, field, where):
    """``(index, box)`` of a record's box list, each box checked to be an object."""
    boxes = record.get(field)
    if not isinstance(boxes, list):
        raise InputError(f'{where}: field {field} is missing or not a list')
    for k, box in enumerate(boxes):
        if not isinstance(box, dict):
            raise InputError(f'{where}: {field}[{k}] is not an object')
        yield k, box


def _check_xywh(box, where):
    if not (isinstance(box, list) and len(box) == 4 and all(map(_is_number, box))):
        raise InputError(f'{where} is missing or not a list of 4 numbers [x, y, w, h]')
    if box[2] < 0:
        raise InputError(f'{where} has a negative width {box[2]}')
    if box[3] < 0:
        raise InputError(f'{where} has a negative height {box[3]}')


def _is_number(v):
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)


def _image_size(gt, det):
    for record in (gt, det):
        if 'width' in record and 'height' in record:
            return record['width'], record['height']
    return None


def _xyxy(xywh, size):
    """(n, 4) x1y1x2y2 boxes, clipped to the image as the benchmark does when size is known."""
    boxes = np.array(xywh, dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    if size is not None:
        w, h = size
        boxes[:, 0] = np.clip(boxes[:, 0], 0, w - 1)
        boxes[:, 1] = np.clip(boxes[:, 1], 0, h - 1)
        boxes[:, 2] = np.clip(boxes[:, 2], 0, w)
        boxes[:, 3] = np.clip(boxes[:, 3], 0, h)
    return boxes


def _overlaps(a, b, over_union):
    """IoU (over_union) or IoA (intersection / area of the ``a`` box) of every pair."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)[:, None]
    denom = area_a + np.prod(b[:, 2:] - b[:, :2], axis=1)[None] - inter if over_union else area_a
    return inter / np.maximum(denom, 1e-6)


def _match_image(boxes, scores, persons, ignores):
    """One image's scores and labels (1 TP, 0 FP) in descending score, ignored ones left out."""
    order = np.lexsort((boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0], -scores))
    boxes, scores = boxes[order], scores[order]
    iou = _overlaps(boxes, persons, True)
    ioa = _overlaps(boxes, ignores, False)
    taken = np.zeros(len(persons), dtype=bool)
    labels = np.zeros(len(boxes), dtype=np.int64)
    keep = np.ones(len(boxes), dtype=bool)
    for i in range(len(boxes)):
        if len(persons):
            candidates = np.where(taken, -1.0, iou[i])
            j = int(np.argmax(candidates))
            if candidates[j] > IOU_THR:
                taken[j] = True
                labels[i] = 1
                continue
        if len(ignores) and ioa[i].max() > IOU_THR:
            keep[i] = False
    return scores[keep], labels[keep]
