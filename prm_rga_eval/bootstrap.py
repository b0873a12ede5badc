"""Paired bootstrap of COCO box AP over the val images: is a difference between models real?

A resample is a multiset of the GT's images (``draw_resamples``); its AP is, exactly, what
pycocotools' ``COCOeval`` gives on a dataset made of the drawn images, each copy under a new
image id (copies ordered as their originals). The same resamples serve every model, so the
differences are paired (the PASCAL VOC challenge's way of comparing methods).

Speed: the per-image, per-category matching runs once per model (``coco_matches``: what
``COCOeval.evaluate()`` gives, in numpy); a copy of an image has the same matches as the
original, so each resample only weighs every image by how often it was drawn. Re-ranking is
not needed either: pycocotools' ranking (score, then image, then the image's own order) puts
the copies of a detection next to each other. The interpolated precision at recall r is the
highest precision over the ranked points with recall >= r, so per category, area and IoU
threshold only the point after the last copy of a true positive counts; its TP and FP counts
are weighted cumulative sums, for all resamples at once (a sparse product for the many false
positives; the recall thresholds a TP count reaches read from one table per resample). One
exception keeps this exact: equal scores inside one image with both TPs and FPs interleave
across copies (image copy 1's tied detections, then copy 2's), so such a group gets a point
per copy. A GT-count subset is resampled on the detections of its own images alone.
"""
from dataclasses import replace
from numbers import Integral

import numpy as np
from scipy import sparse

from prm_rga_errors import InputError
from prm_rga_eval.crowdhuman import matched_images, mmr_of
from prm_rga_eval.gt_count import AP_FIELDS, as_coco, check_ranges, gt_counts, subset_name
from prm_rga_eval.matching import PARAMS, coco_matches

MIN_RESAMPLES = 100
# pycocotools' area range of each AP field
AREA_OF = {'bbox_mAP': 'all', 'bbox_mAP_50': 'all', 'bbox_mAP_75': 'all', 'bbox_mAP_s': 'small',
           'bbox_mAP_m': 'medium', 'bbox_mAP_l': 'large'}


def draw_resamples(num_images, num_resamples=1000, seed=0):
    """``(num_resamples, num_images)`` image positions drawn with replacement.

    Positions index the GT's image ids in ascending order. Fewer than 100 resamples cannot
    give a 95% interval (2.5% of them is under 3 values): InputError.
    """
    for name, value, least in (('num_images', num_images, 1),
                               ('num_resamples', num_resamples, MIN_RESAMPLES)):
        if not isinstance(value, Integral) or isinstance(value, bool) or value < least:
            raise InputError(f'{name}: {value!r} is not an integer >= {least}'
                             + (' (a 95% interval needs at least 100 resamples; 1000 is usual)'
                                if name == 'num_resamples' else ''))
    rng = np.random.default_rng(seed)
    return rng.integers(0, num_images, size=(num_resamples, num_images))


def resample_counts(resamples, num_images):
    """How often each image was drawn in each resample: int array (B, num_images).

    Raises InputError when ``resamples`` is not a 2-D integer array of positions into
    ``num_images`` images with one position per image (resamples drawn for another val set).
    """
    res = np.asarray(resamples)
    if res.ndim != 2 or not len(res) or not np.issubdtype(res.dtype, np.integer):
        raise InputError(f'resamples: expected a 2-D integer array (B, {num_images}) of image '
                         f'positions, got shape {res.shape} of {res.dtype}')
    if res.shape[1] != num_images:
        raise InputError(f'resamples: {res.shape[1]} positions per resample but the ground truth '
                         f'has {num_images} images (drawn for another val set?)')
    if res.min() < 0 or res.max() >= num_images:
        raise InputError(f'resamples: positions must lie in [0, {num_images}), got '
                         f'[{res.min()}, {res.max()}]')
    rows = np.arange(len(res))[:, None] * num_images
    return np.bincount((rows + res).ravel(), minlength=res.size).reshape(res.shape)


def paired_bootstrap_ap(coco_gt, detections, resamples, ranges=None, fields=None):
    """COCO box AP of every model on every resample of the images.

    Args:
        coco_gt: a pycocotools ``COCO`` or the path of a COCO JSON file.
        detections: model name -> COCO result dicts on the GT's images.
        resamples: int array (B, n), image positions into ``sorted(coco_gt.getImgIds())``;
            the row ``np.arange(n)`` gives pycocotools' own numbers.
        ranges: GT-count ranges as ``gt_count_subset_ap`` takes them, or None.
        fields: the keys to compute (as returned, e.g. ``'bbox_mAP'``, ``'gt8-inf/bbox_mAP'``),
            or None for all: each area range (``AREA_OF``) of each set of images is one pass
            over its detections, so the fields of one area cost no more than one of them.

    Returns ``{name: {'bbox_mAP': array(B), ..., 'bbox_mAP_l': array(B), 'num_images':
    array(B)}}`` and, given ``ranges``, the same fields per GT-count subset under the MLflow
    names (``'gt1-3/bbox_mAP'``, ``'gt1-3/num_images'``): a resample's subset is its drawn
    images with that GT count. As pycocotools: -1 where nothing is evaluated (no GT of a size,
    an empty subset). With ``fields``: those, and ``num_images`` of their sets of images.
    """
    if not isinstance(detections, dict) or not detections:
        raise InputError('detections: expected a dict of model name -> COCO result dicts')
    gt = as_coco(coco_gt)
    img_ids = sorted(gt.getImgIds())
    counts = resample_counts(resamples, len(img_ids))
    groups = {'': None}  # key prefix -> the subset's images (None: all)
    if ranges is not None:
        per_image = gt_counts(gt)
        n_gt = np.array([per_image[i] for i in img_ids])
        for lo, hi in check_ranges(ranges):
            upper = np.inf if hi is None else hi
            groups[subset_name(lo, hi) + '/'] = (n_gt >= lo) & (n_gt <= upper)
    wanted = {prefix: [f for f in AP_FIELDS if fields is None or prefix + f in fields]
              for prefix in groups}
    unknown = set(fields or ()) - {prefix + f for prefix, names in wanted.items() for f in names}
    if unknown:
        raise InputError(f'fields: no such field {", ".join(sorted(unknown))} (fields are '
                         f'{", ".join(AP_FIELDS)}, per GT-count subset given ranges)')
    out = {}
    for name, dets in detections.items():
        matches = coco_matches(gt, dets, f'detections[{name!r}]')
        out[name] = {}
        for prefix, inside in groups.items():
            if not wanted[prefix]:
                continue
            weights = counts if inside is None else counts * inside
            stats = _resampled_stats(matches if inside is None else _on_images(matches, inside),
                                     weights, wanted[prefix])
            stats['num_images'] = weights.sum(1)
            out[name].update({prefix + field: values for field, values in stats.items()})
    return out


def _on_images(m, images):
    """``Matches`` of the detections on IMAGES (bool per image position) alone: in a subset's
    resamples the others weigh nothing, so they change no sum; left out, they cost nothing."""
    keep = images[m.img]
    before = np.concatenate([[0], np.cumsum(keep)])  # kept detections before each position
    return replace(m, cat_start=before[m.cat_start], img=m.img[keep], score=m.score[keep],
                   tp=m.tp[:, :, keep], fp=m.fp[:, :, keep])


def _resampled_stats(m, weights, fields=AP_FIELDS):
    """FIELDS (of AP_FIELDS) of one model's ``Matches`` for every row of ``weights`` (copies per
    image), each area range they need computed once."""
    p = PARAMS
    num_t, num_r = len(p.iouThrs), len(p.recThrs)
    area = {label: n for n, label in enumerate(p.areaRngLbl)}
    areas = sorted({area[AREA_OF[f]] for f in fields})
    cols = np.ascontiguousarray(weights.T, dtype=np.float64)  # (images, B)
    max_copies = weights.max(0)
    # per area range and resample: sum of the interpolated precision over categories, IoU and
    # recall thresholds; the same at IoU .5 and .75 (area 'all'); categories with GT
    total, valid = np.zeros((2, len(area), len(weights)))
    t_of = {f: int(np.flatnonzero(p.iouThrs == thr)[0])
            for f, thr in (('bbox_mAP_50', .5), ('bbox_mAP_75', .75))}
    at_iou = {f: np.zeros(len(weights)) for f in t_of}
    # non-ignored GT per category, area range and resample: one product (not one per row)
    npigs = (m.npig.reshape(-1, cols.shape[0]) @ cols).reshape(*m.npig.shape[:2], -1)
    for k in range(len(m.npig)):
        span = slice(m.cat_start[k], m.cat_start[k + 1])
        img, scores = m.img[span], m.score[span]
        for a in areas:
            npig = npigs[k, a]
            has_gt = npig > 0
            valid[a] += has_gt
            if not len(img) or not has_gt.any():
                continue
            sums = _precision_sums(img, scores, m.tp[a, :, span], m.fp[a, :, span], cols,
                                   np.where(has_gt, npig, 1), p.recThrs, max_copies)
            sums[:, ~has_gt] = 0
            total[a] += sums.sum(0)
            if a == 0:
                for f, t in t_of.items():
                    at_iou[f] += sums[t]

    def mean(field):  # over the categories with GT, the IoU and the recall thresholds
        a = area[AREA_OF[field]]
        sums, per_category = ((at_iou[field], num_r) if field in at_iou else
                              (total[a], num_t * num_r))
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(valid[a] > 0, sums / (per_category * valid[a]), -1.0)

    return {f: mean(f) for f in fields}


def _precision_sums(img, scores, tp, fp, cols, npig, rec_thrs, max_copies):
    """Per IoU threshold and resample, the sum over recall thresholds of one category's
    interpolated precision in one area range: array (T, B).

    ``img``/``scores``: the ranked detections; ``tp``/``fp``: (T, D) their flags (ignored ones
    neither); ``cols``: (images, B) copies per image; ``npig``: (B,) non-ignored GT (> 0).
    """
    num_t, num_b = tp.shape[0], cols.shape[1]
    out = np.zeros((num_t, num_b))
    start = tie_groups(img, scores)
    end = np.append(start[1:], len(img))
    tb, fb = np.add.reduceat(tp, start, axis=1), np.add.reduceat(fp, start, axis=1)
    keep = np.flatnonzero(tb.any(0))  # groups with a TP at some IoU threshold
    if not len(keep):
        return out
    copies = cols[img[start[keep]]]  # (U, B)
    # each detection's segment: the first kept group ranked after it
    seg = np.searchsorted(start[keep], np.arange(len(img)), side='right')
    reached, offset = _recall_table(npig, rec_thrs)

    # FPs ranked before each kept group at the first IoU threshold; at the others only the
    # detections whose flag differs are added (few): one sparse product for all thresholds
    rows_at = [np.flatnonzero(tb[t, keep]) for t in range(num_t)]  # kept groups with a TP
    fp_first, *fp_delta = _weighted_before(
        [(fp[0], np.arange(len(keep)))] + [(fp[t].astype(np.int8) - fp[0], rows_at[t])
                                          for t in range(num_t)], seg, img, cols)
    for t, rows in enumerate(rows_at):
        if not len(rows):
            continue
        f0 = fp_first[rows] + fp_delta[t]
        g_tp, g_fp = tb[t, keep[rows]], fb[t, keep[rows]]
        c = copies[rows]
        t_w = c * g_tp[:, None]
        if not g_fp.any():  # TP-only groups: the point after the image's last copy counts
            tps, fps = _cumsum_rows(t_w), f0
        else:
            t0 = _cumsum_rows(t_w.copy()) - t_w
            u, q, e_tp, e_fp = _mixed_points(tp[t], fp[t], start[keep[rows]],
                                             end[keep[rows]], g_tp, g_fp,
                                             max_copies[img[start[keep[rows]]]])
            c = c[u]
            q = np.where(q[:, None] < 0, c - 1, q[:, None])
            drawn = (q >= 0) & (q < c)  # copy q exists; else the point after the group
            mult = np.where(drawn, q, c)
            tps = t0[u] + mult * g_tp[u, None] + drawn * e_tp[:, None]
            fps = f0[u] + mult * g_fp[u, None] + drawn * e_fp[:, None]
        # pycocotools' precision, in place: tps / (fps + tps + eps)
        prec = np.add(fps, tps, out=fps)
        prec += np.spacing(1)
        np.divide(tps, prec, out=prec)
        best_after = _cumsum_rows(prec[::-1], np.maximum)[::-1]
        gained = reached[(tps + offset).astype(np.intp)]
        gained[1:] -= gained[:-1].copy()
        out[t] = (best_after * gained).sum(0)
    return out


def _weighted_before(blocks, seg, img, cols):
    """Per block ``(flags, rows)``: the weighted count (``cols``, copies per image) of the
    flagged detections ranked before each of ``rows``, kept groups ascending (``seg``: each
    detection's first kept group ranked after it); the sparse product of all blocks at once,
    then a cumulative sum in each."""
    data, indices, row_of, first = [], [], [], [0]
    for flags, rows in blocks:
        hit = np.flatnonzero(flags)
        row = np.searchsorted(rows, seg[hit])
        hit, row = hit[row < len(rows)], row[row < len(rows)]
        data.append(flags[hit])
        indices.append(img[hit])
        row_of.append(row + first[-1])
        first.append(first[-1] + len(rows))
    row_of = np.concatenate(row_of)
    m = sparse.csr_matrix((np.concatenate(data).astype(np.float64), np.concatenate(indices),
                           np.searchsorted(row_of, np.arange(first[-1] + 1))),
                          shape=(first[-1], cols.shape[0]))
    out = m @ cols
    return [_cumsum_rows(out[lo:hi]) for lo, hi in zip(first, first[1:])]


def _cumsum_rows(a, op=np.add):
    """``op.accumulate(a, axis=0)`` in place, a row at a time: numpy accumulates one column
    after the other, several times slower than a loop over rows of B resamples."""
    for i in range(1, len(a)):
        op(a[i], a[i - 1], out=a[i])
    return a


def _recall_table(npig, rec_thrs):
    """How many recall thresholds ``x`` TPs of ``npig[b]`` GT reach (pycocotools: threshold r is
    reached at the first point whose ``tp / npig >= r``), for every x in [0, npig[b]]:
    ``table[offset[b] + x]``. Made from the TPs each threshold needs, per resample."""
    n = npig.astype(np.intp)
    offset = np.concatenate([[0], np.cumsum(n + 1)[:-1]])
    need = np.ceil(rec_thrs[:, None] * npig)  # then the float comparison decides near it
    need += need / npig < rec_thrs[:, None]
    need -= (need > 0) & ((need - 1) / npig >= rec_thrs[:, None])
    counts = np.bincount((need + offset).astype(np.intp)[need <= npig],
                         minlength=offset[-1] + n[-1] + 1)
    table = np.cumsum(counts)
    table -= np.repeat(table[offset] - counts[offset], n + 1)  # each resample from 0
    return table.astype(np.int16), offset


def tie_groups(img, scores):
    """Where each run of equal scores of one image starts in a ranking: such a run stays
    together in the ranking of the duplicated images, copy by copy."""
    new = np.ones(len(img), dtype=bool)
    new[1:] = (img[1:] != img[:-1]) | (scores[1:] != scores[:-1])
    return np.flatnonzero(new)


def _mixed_points(tp, fp, start, end, g_tp, g_fp, max_copies):
    """The ranked points that can carry the interpolated precision, for groups with a TP.

    Per point, in rank order: its group, the copy ``q`` (-1: the image's last copy in each
    resample) and inside the group the TPs up to and the FPs before it. A TP-only group needs
    the point after its last copy; a mixed group (equal scores of TPs and FPs in one image)
    needs every TP of every copy, as the copies interleave.
    """
    pure = np.flatnonzero(g_fp == 0)
    parts = [(pure, np.full(len(pure), -1), g_tp[pure], np.zeros(len(pure)),
              np.zeros(len(pure)))]
    for u in np.flatnonzero(g_fp):
        span = slice(start[u], end[u])
        at = np.flatnonzero(tp[span])
        e_tp, e_fp = np.cumsum(tp[span])[at], np.cumsum(fp[span])[at]
        for q in range(int(max_copies[u])):
            parts.append((np.full(len(at), u), np.full(len(at), q), e_tp, e_fp, at))
    u, q, e_tp, e_fp, rank = (np.concatenate(x) for x in zip(*parts))
    order = np.lexsort((rank, q, u))
    return u[order], q[order], e_tp[order].astype(np.float64), e_fp[order].astype(np.float64)


def paired_bootstrap_mmr(gt_records, detections, resamples):
    """CrowdHuman mMR, AP50 and recall of every model on every resample of the images.

    ``gt_records``/``detections`` (model name -> detection records) as ``crowdhuman_mmr``
    takes them; ``resamples`` (B, n) positions into ``gt_records``. Resample r equals
    ``crowdhuman_mmr`` on records where the drawn images are copied under new IDs (copies in
    the order of their originals); NaN for a resample without any person. The matching runs
    once per model; each resample re-ranks the copies (copies of equal-score detections of one
    image interleave, as they do in the copied records).
    """
    if not isinstance(detections, dict) or not detections:
        raise InputError('detections: expected a dict of model name -> detection records')
    counts = resample_counts(resamples, len(gt_records))
    out = {}
    for name, records in detections.items():
        try:
            per_image, persons = matched_images(gt_records, records)
        except InputError as e:
            raise InputError(f'detections[{name!r}]: {e}') from None
        img = np.repeat(np.arange(len(per_image)), [len(s) for s, _ in per_image])
        scores = np.concatenate([s for s, _ in per_image])
        labels = np.concatenate([t for _, t in per_image])
        order = np.argsort(-scores, kind='stable')
        img, scores, labels = img[order], scores[order], labels[order]
        start = tie_groups(img, scores)
        length = np.diff(np.append(start, len(img)))
        res = {key: np.full(len(counts), np.nan) for key in ('mMR', 'AP50', 'recall')}
        for b, copies in enumerate(counts):
            num_persons = int(persons @ copies)
            if not num_persons:
                continue
            size = length * copies[img[start]]  # each group repeated copy by copy
            group = np.repeat(np.arange(len(start)), size)
            offset = np.arange(len(group)) - np.repeat(np.cumsum(size) - size, size)
            ranked = labels[start[group] + offset % length[group]]
            for key, value in mmr_of(ranked, num_persons, len(copies)).items():
                res[key][b] = value
        out[name] = res
    return out


def percentile_interval(values, level=0.95):
    """``(low, high)``: the percentile bootstrap interval of resampled ``values`` (e.g. the
    paired differences of two models), NaN values left out. Fewer than 100 values: InputError.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) < MIN_RESAMPLES:
        raise InputError(f'resamples: {len(values)} values, a {level:.0%} interval needs at '
                         f'least {MIN_RESAMPLES}')
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
