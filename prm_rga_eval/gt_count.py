"""COCO box AP on subsets of images grouped by their GT count (the paper's second imbalance).

The per-image matching of ``COCOeval.evaluate()`` is by far the expensive step and does not
depend on which other images are evaluated, so it runs once; each subset then only repeats
pycocotools' ``accumulate``/``summarize`` on that subset's share of ``evalImgs``. The numbers
are identical to a fresh ``COCOeval`` with ``params.imgIds`` set to the subset.
"""

import contextlib
import copy
import gc
import io
import math
import os
import os.path as osp
from numbers import Integral, Real

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from prm_rga_errors import InputError

DEFAULT_RANGES = ((1, 3), (4, 7), (8, None))
AP_FIELDS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m',
             'bbox_mAP_l')
DET_FIELDS = ('image_id', 'category_id', 'bbox', 'score')


def check_ranges(ranges):
    """Return ``ranges`` as a tuple of inclusive ``(lo, hi)`` pairs (``hi`` None = open).

    Raises InputError for an empty list, a malformed, inverted or overlapping range.
    """
    try:
        ranges = tuple(tuple(r) for r in ranges)
    except TypeError:
        raise InputError(f'ranges: {ranges!r} is not a list of (lo, hi) pairs') from None
    if not ranges:
        raise InputError('ranges: empty; give at least one (lo, hi) pair')
    for r in ranges:
        ok = (len(r) == 2 and _is_count(r[0]) and (r[1] is None or _is_count(r[1])))
        if not ok:
            raise InputError(f'ranges: {list(r)!r} is not a pair of GT counts '
                             '(lo, hi), integers >= 0, hi may be None for no upper bound')
        if r[1] is not None and r[1] < r[0]:
            raise InputError(f'ranges: {list(r)!r} is inverted (hi < lo)')
    ordered = sorted(ranges)
    for a, b in zip(ordered, ordered[1:]):
        if a[1] is None or a[1] >= b[0]:
            raise InputError(f'ranges: {list(a)!r} and {list(b)!r} overlap')
    return ranges


def subset_name(lo, hi):
    """'gt1-3', or 'gt8-inf' for an open range: the key used in results and metric names."""
    return f'gt{lo}-{"inf" if hi is None else hi}'


def gt_counts(coco_gt):
    """Number of non-crowd GT boxes of every image of ``coco_gt`` (all categories)."""
    counts = dict.fromkeys(coco_gt.getImgIds(), 0)
    for ann in coco_gt.anns.values():
        if ann['image_id'] not in counts:
            raise InputError(f'annotation id {ann.get("id")!r}: image_id '
                             f'{ann["image_id"]!r} is not among the images')
        if not ann.get('iscrowd', 0):
            counts[ann['image_id']] += 1
    return counts


def gt_count_subset_ap(coco_gt, detections, ranges=DEFAULT_RANGES):
    """COCO box AP on all images and on each GT-count subset.

    Args:
        coco_gt: a pycocotools ``COCO`` or the path of a COCO JSON file.
        detections: COCO result dicts (``image_id``, ``category_id``, ``bbox`` xywh, ``score``).
        ranges: inclusive GT-count ranges, ``None`` as upper bound = unbounded.

    Returns ``{'all': {...}, 'gt1-3': {...}, ...}``: per subset ``AP_FIELDS`` (fractions,
    pycocotools' ``stats[0:6]``) and ``num_images``. A subset without images has ``num_images``
    0 and -1 for each AP field, pycocotools' value for "nothing to evaluate"; so has an AP
    field with no GT in the subset (e.g. ``bbox_mAP_l`` when no large objects).
    """
    ranges = check_ranges(ranges)
    gt = as_coco(coco_gt)
    counts = gt_counts(gt)
    ev = evaluated(gt, detections)
    with contextlib.redirect_stdout(io.StringIO()):
        img_ids = ev._paramsEval.imgIds
        out = {'all': _summary(ev, len(img_ids))}
        for lo, hi in ranges:
            ids = [i for i in img_ids if lo <= counts[i] and (hi is None or counts[i] <= hi)]
            out[subset_name(lo, hi)] = _summary(_restricted(ev, ids), len(ids))
    return out


def as_coco(coco_gt):
    """A pycocotools ``COCO`` as given, or loaded (quietly) from a COCO JSON path."""
    if isinstance(coco_gt, COCO):
        return coco_gt
    with contextlib.redirect_stdout(io.StringIO()):
        return _load_gt(coco_gt)


def evaluated(gt, detections, name='detections'):
    """``COCOeval`` of ``detections`` against ``gt`` (a COCO) after ``evaluate()``: the
    per-image, per-category matches that every subset or resample of the images reuses.
    ``name`` is how error messages call the detections."""
    with contextlib.redirect_stdout(io.StringIO()), paused_gc():
        ev = COCOeval(gt, _load_results(gt, detections, name), 'bbox')
        ev.evaluate()
    return ev


@contextlib.contextmanager
def paused_gc():
    """No cyclic garbage collection while pycocotools makes its millions of small dicts (the
    collector would rescan them again and again: a quarter of evaluate()'s time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def check_xywh(box, where):
    """A COCO box: 4 finite numbers [x, y, w, h] with w, h >= 0; ``where`` names it."""
    if not (isinstance(box, (list, tuple)) and len(box) == 4
            and all(isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)
                    for v in box)):
        raise InputError(f'{where}: {box!r} is not a list of 4 numbers [x, y, w, h]')
    if box[2] < 0 or box[3] < 0:
        raise InputError(f'{where}: {list(box)!r} has a negative '
                         f'{"width" if box[2] < 0 else "height"}')


def _is_count(v):
    return isinstance(v, Integral) and not isinstance(v, bool) and v >= 0


def _load_gt(path):
    if not osp.isfile(path):
        raise InputError(f'{path}: no such COCO annotation file')
    try:
        return COCO(os.fspath(path))
    except (ValueError, AssertionError, KeyError, TypeError) as e:
        raise InputError(f'{path}: not a COCO annotation file ({e!r})') from None


def check_detections(gt, detections, name='detections'):
    """InputError, naming ``name`` and the field, for a detection ``gt.loadRes`` cannot take or
    that lies on an image the GT does not have."""
    for n, d in enumerate(detections):
        missing = [k for k in DET_FIELDS if k not in d]
        if missing:
            raise InputError(f'{name}[{n}]: missing field(s) {", ".join(missing)}')
        check_xywh(d['bbox'], f'{name}[{n}].bbox')
        score = d['score']
        if not (isinstance(score, Real) and not isinstance(score, bool)
                and math.isfinite(score)):
            raise InputError(f'{name}[{n}].score: {score!r} is not a finite number')
    unknown = {d['image_id'] for d in detections} - set(gt.getImgIds())
    if unknown:
        shown = sorted(unknown, key=str)
        more = f' and {len(shown) - 10} more' if len(shown) > 10 else ''
        raise InputError(f'{name}: image_id(s) not in the ground truth: {shown[:10]}{more}')


def _load_results(gt, detections, name='detections'):
    """``gt.loadRes`` on copies (it writes into the dicts), and an empty result set for []."""
    dets = list(detections)
    check_detections(gt, dets, name)
    if dets:
        return gt.loadRes([dict(d) for d in dets])
    empty = COCO()  # loadRes([]) fails on anns[0]
    empty.dataset = {'images': list(gt.dataset.get('images', [])), 'annotations': [],
                     'categories': copy.deepcopy(gt.dataset.get('categories', []))}
    empty.createIndex()
    return empty


def _restricted(ev, img_ids):
    """A shallow copy of an evaluated COCOeval that ``accumulate`` sees as evaluated on img_ids.

    ``evalImgs`` is laid out [category][area range][image] over ``_paramsEval.imgIds``, and
    ``accumulate`` indexes it with positions taken from ``params.imgIds``: restricting only
    ``params.imgIds`` would read the wrong entries, so both id lists and the layout change
    together. ``img_ids`` keeps the evaluated (sorted) order, as a fresh evaluation would.
    """
    pe = ev._paramsEval
    n_img = len(pe.imgIds)
    pos = {i: n for n, i in enumerate(pe.imgIds)}
    sel = [pos[i] for i in img_ids]
    sub = copy.copy(ev)
    sub.evalImgs = [ev.evalImgs[block * n_img + i]
                    for block in range(len(ev.evalImgs) // max(n_img, 1)) for i in sel]
    sub.params = copy.copy(ev.params)
    sub.params.imgIds = list(img_ids)
    sub._paramsEval = copy.copy(pe)
    sub._paramsEval.imgIds = list(img_ids)
    return sub


def _summary(ev, num_images):
    if num_images == 0:
        return {**dict.fromkeys(AP_FIELDS, -1.0), 'num_images': 0}
    ev.accumulate()
    ev.summarize()
    return {**{k: float(v) for k, v in zip(AP_FIELDS, ev.stats[:6])}, 'num_images': num_images}
