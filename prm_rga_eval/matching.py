"""pycocotools' per-image box matching (``COCOeval.evaluate()``), in numpy, for the bootstrap.

``evaluate()`` matches one (image, category, area range) at a time in Python: at COCO-val scale
(500,000 detections) it takes about a minute per model, more than all the resampling after it.
``coco_matches`` gives the same outcome, flag for flag, as arrays: the same IoU arithmetic as
pycocotools' C ``bbIou``; each image's detections of a category ranked by score (stable), the
first 100 kept; per IoU threshold and area range, each detection in turn takes the available GT
with the highest IoU >= the threshold (the last one on equal IoU; a GT of the area range before
an ignored one: crowd, or outside the range; a crowd GT stays available), and is ignored when it
took an ignored GT or, taking none, lies outside the range. The greedy order is kept by stepping
over each image's rank of its detections, all (image, category) pairs at once; detections with
no GT at IoU >= 0.5 cannot match and skip the steps.
"""
from dataclasses import dataclass
from numbers import Real

import numpy as np
from pycocotools.cocoeval import Params

from prm_rga_eval.gt_count import check_detections

PARAMS = Params(iouType='bbox')


@dataclass
class Matches:
    """One model's matches, detections ranked per category as pycocotools' ``accumulate``
    ranks them (score descending, then image position, then rank in the image).

    ``cat_start`` (K+1,): category k's detections are ``[cat_start[k], cat_start[k+1])``;
    ``img`` (N,) image positions (sorted image ids), ``score`` (N,); ``tp``/``fp`` (A, T, N)
    per area range and IoU threshold (ignored detections are neither); ``npig`` (K, A, n):
    the non-ignored GT of each category, area range and image.
    """
    cat_start: np.ndarray
    img: np.ndarray
    score: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    npig: np.ndarray


def coco_matches(gt, detections, name='detections'):
    """``Matches`` of COCO result dicts against a pycocotools ``COCO`` (bad input: InputError
    naming ``name``), as ``COCOeval(gt, gt.loadRes(detections), 'bbox').evaluate()``."""
    d_img, d_cid, d_box, d_score = _detection_arrays(gt, detections, name)
    img_ids = sorted(gt.getImgIds())
    cat_ids = np.array(sorted(gt.getCatIds()))
    n_img, n_cat = len(img_ids), len(cat_ids)
    area_rng = np.array(PARAMS.areaRng, dtype=np.float64)
    thr = np.minimum(PARAMS.iouThrs, 1 - 1e-10)

    # GT, per image in the order pycocotools loads them (imgToAnns)
    anns = [a for i in img_ids for a in gt.imgToAnns.get(i, ())]
    pos_of = {i: n for n, i in enumerate(img_ids)}
    g_img = np.array([pos_of[a['image_id']] for a in anns], dtype=np.int64)
    g_cat = np.searchsorted(cat_ids, [a['category_id'] for a in anns]).astype(np.int64)
    g_known = np.isin([a['category_id'] for a in anns], cat_ids)
    g_box = np.array([a['bbox'] for a in anns], dtype=np.float64).reshape(-1, 4)
    g_area = np.array([a['area'] for a in anns], dtype=np.float64)
    g_crowd = np.array([bool(a.get('iscrowd', 0)) for a in anns], dtype=bool)
    g_id = np.array([a['id'] for a in anns])
    g_out = (g_area < area_rng[:, :1]) | (g_area > area_rng[:, 1:])  # (A, G)
    g_ign = g_crowd | g_out  # (A, G): pycocotools' gtIgnore per area range
    npig = np.zeros((n_cat, len(area_rng), n_img))
    for a in range(len(area_rng)):
        keep = g_known & ~g_ign[a]
        npig[:, a] = np.bincount(g_cat[keep] * n_img + g_img[keep],
                                 minlength=n_cat * n_img).reshape(n_cat, n_img)
    known_g = np.flatnonzero(g_known)
    g_order = known_g[np.lexsort((g_img[known_g], g_cat[known_g]))]
    g_key = g_cat[g_order] * n_img + g_img[g_order]

    # detections of known categories, per (category, image) ranked by score, first 100
    d_img = np.array([pos_of[i] for i in d_img], dtype=np.int64)
    d_cat = np.searchsorted(cat_ids, d_cid).astype(np.int64)
    known = np.flatnonzero(np.isin(d_cid, cat_ids))
    order = known[np.lexsort((-d_score[known], d_img[known], d_cat[known]))]
    key = d_cat[order] * n_img + d_img[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else key
    rank = np.arange(len(key)) - np.repeat(first, np.diff(np.r_[first, len(key)]))
    top = rank < PARAMS.maxDets[-1]
    order, key, rank = order[top], key[top], rank[top]
    box, score = d_box[order], d_score[order]
    d_out = ((box[:, 2] * box[:, 3] < area_rng[:, :1])
             | (box[:, 2] * box[:, 3] > area_rng[:, 1:]))  # (A, D)

    # every (detection, GT) pair of one image and category, with its IoU
    g_lo, g_hi = np.searchsorted(g_key, key), np.searchsorted(g_key, key, side='right')
    num = g_hi - g_lo
    p_det = np.repeat(np.arange(len(key)), num)
    p_gt = g_order[np.arange(num.sum()) - np.repeat(np.cumsum(num) - num, num)
                   + np.repeat(g_lo, num)]
    iou = box_iou(box[p_det], g_box[p_gt], g_crowd[p_gt])
    match = _greedy(p_det, p_gt, iou, key, thr, g_ign, g_crowd)  # (A, T, D)

    matched = match >= 0
    dtm, ign = np.zeros_like(matched), np.zeros_like(matched)
    area_m = np.nonzero(matched)[0]
    dtm[matched] = g_id[match[matched]] != 0  # pycocotools reads a match as a nonzero GT id
    ign[matched] = g_ign[area_m, match[matched]]
    ign |= ~dtm & d_out[:, None, :]
    ranked = np.lexsort((rank, d_img[order], -score, d_cat[order]))
    cat_start = np.searchsorted(d_cat[order][ranked], np.arange(n_cat + 1))
    tp, fp = (dtm & ~ign)[:, :, ranked], (~dtm & ~ign)[:, :, ranked]
    return Matches(cat_start, d_img[order][ranked], score[ranked], tp, fp, npig)


def _detection_arrays(gt, detections, name):
    """``image_id`` list, ``category_id``, ``bbox`` (N, 4) and ``score`` arrays of COCO result
    dicts, checked as ``check_detections`` checks them, one type test per distinct type (per
    detection, the test is most of the time at COCO-val scale): what it would reject goes
    through it, for its message."""
    try:
        img = [d['image_id'] for d in detections]
        cid = np.array([d['category_id'] for d in detections])
        boxes = [d['bbox'] for d in detections]
        scores = [d['score'] for d in detections]
        ok = ({type(b) for b in boxes} <= {list, tuple} and {len(b) for b in boxes} <= {4}
              and all(issubclass(t, Real) and not issubclass(t, bool)
                      for t in {type(v) for b in boxes for v in b} | set(map(type, scores))))
    except (KeyError, TypeError):  # a field missing, or not a dict
        ok = False
    if not ok:
        check_detections(gt, detections, name)  # raises, naming the detection and field
    box = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    score = np.array(scores, dtype=np.float64)
    if not (np.isfinite(box).all() and np.isfinite(score).all() and (box[:, 2:] >= 0).all()
            and set(img) <= set(gt.getImgIds())):
        check_detections(gt, detections, name)
    return img, cid, box, score


def box_iou(d, g, crowd):
    """IoU of paired xywh boxes, computed as pycocotools' ``bbIou`` computes it (a crowd GT:
    intersection over the detection's area)."""
    w = np.minimum(d[:, 2] + d[:, 0], g[:, 2] + g[:, 0]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 3] + d[:, 1], g[:, 3] + g[:, 1]) - np.maximum(d[:, 1], g[:, 1])
    inter = w * h
    da = d[:, 2] * d[:, 3]
    union = np.where(crowd, da, da + g[:, 2] * g[:, 3] - inter)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where((w > 0) & (h > 0), inter / union, 0.0)


def _greedy(p_det, p_gt, iou, key, thr, g_ign, g_crowd):
    """The GT each detection takes per area range and IoU threshold (-1: none): (A, T, D).

    Pairs are (detection, GT) of one image and category (``key``, detections ranked in
    each). Step s takes, in every image and
    category at once, the s-th detection that has a GT at IoU >= the lowest threshold.
    """
    num_a, num_t = g_ign.shape[0], len(thr)
    match = np.full((num_a, num_t, len(key)), -1, dtype=np.int64)
    live = iou >= thr.min()
    p_det, p_gt, iou = p_det[live], p_gt[live], iou[live]
    if not len(p_det):
        return match
    dets = np.unique(p_det)  # ranked within each (image, category): their group and step
    group = np.cumsum(np.r_[True, key[dets[1:]] != key[dets[:-1]]]) - 1
    step = np.arange(len(dets)) - np.searchsorted(group, group)
    pair_step = step[np.searchsorted(dets, p_det)]
    by_step = np.argsort(pair_step, kind='stable')
    bounds = np.searchsorted(pair_step[by_step], np.arange(step.max() + 2))
    taken = np.zeros((num_a, num_t, len(g_crowd)), dtype=bool)
    a_idx, t_idx = np.arange(num_a)[:, None, None], np.arange(num_t)[None, :, None]
    for s in range(step.max() + 1):
        sel = by_step[bounds[s]:bounds[s + 1]]  # this step's pairs, by detection, GT order
        det, gt_s, v = p_det[sel], p_gt[sel], iou[sel]
        start = np.flatnonzero(np.r_[True, det[1:] != det[:-1]])
        ok = ~taken[:, :, gt_s] & (v >= thr[:, None])  # (A, T, P)
        reg = ok & ~g_ign[:, None, gt_s]
        use = np.where(np.logical_or.reduceat(reg, start, axis=2)[..., _seg(start, len(sel))],
                       reg, ok)
        score = np.where(use, v, -1.0)
        best = np.maximum.reduceat(score, start, axis=2)
        wins = use & (score == best[..., _seg(start, len(sel))])
        last = np.maximum.reduceat(np.where(wins, np.arange(len(sel)), -1), start, axis=2)
        got = last >= 0
        gt_won = np.where(got, gt_s[np.maximum(last, 0)], -1)  # (A, T, detections)
        match[:, :, det[start]] = gt_won
        hold = got & ~g_crowd[np.maximum(gt_won, 0)]
        taken[np.broadcast_to(a_idx, hold.shape)[hold], np.broadcast_to(t_idx, hold.shape)[hold],
              gt_won[hold]] = True
    return match


def _seg(start, length):
    """Segment index of each of ``length`` items, segments starting at ``start``."""
    return np.repeat(np.arange(len(start)), np.diff(np.r_[start, length]))
