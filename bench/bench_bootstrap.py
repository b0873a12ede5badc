"""Cost of the paired bootstrap of COCO AP, against the naive way measured in the same run.

A COCO-val-sized synthetic case (default 5,000 images, 80 classes, 100 detections per image
on average, two models on the same GT), B resamples of the images: the steps of
``paired_bootstrap_ap`` (the per-image matching once per model, ``coco_matches``: pycocotools'
``evaluate()`` in numpy; then all resamples vectorized, also with the three GT-count subsets,
each on its own images' detections, and for AP, AP50 and AP75 alone: the fields of one area),
against the naive cost: one fresh ``COCOeval`` (loadRes, evaluate, accumulate, summarize) per
model and resample on the duplicated-image dataset, timed on ``--naive`` resamples and
extrapolated to B. The naive runs also check that both agree.
Target: <= 60 s for B = 1,000 on 2 cores. Usage:
    python bench/bench_bootstrap.py [--images 5000] [--classes 80] [--dets-per-image 100]
        [--resamples 1000] [--naive 2]
"""
import argparse
import contextlib
import io
import time

import numpy as np
from bench_subset_metric import plain, synthetic
from pycocotools.coco import COCO

from prm_rga_eval.bootstrap import draw_resamples
from prm_rga_eval.bootstrap import _on_images, _resampled_stats, resample_counts
from prm_rga_eval.gt_count import AP_FIELDS, DEFAULT_RANGES, gt_counts
from prm_rga_eval.matching import coco_matches


def duplicated(gt, dets, row):
    """COCO of the drawn images, each copy under a new id, and the copies' detections."""
    ids = sorted(gt.getImgIds())
    images, anns, new_dets = [], [], []
    by_image = {}
    for d in dets:
        by_image.setdefault(d['image_id'], []).append(d)
    for new_id, pos in enumerate(sorted(row), 1):
        old = ids[pos]
        images.append(dict(gt.imgs[old], id=new_id))
        anns += [dict(a, image_id=new_id) for a in gt.imgToAnns[old]]
        new_dets += [dict(d, image_id=new_id) for d in by_image.get(old, ())]
    dup = COCO()
    dup.dataset = dict(images=images, categories=list(gt.cats.values()),
                       annotations=[dict(a, id=n) for n, a in enumerate(anns, 1)])
    with contextlib.redirect_stdout(io.StringIO()):
        dup.createIndex()
    return dup, new_dets


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--images', type=int, default=5000)
    ap.add_argument('--classes', type=int, default=80)
    ap.add_argument('--dets-per-image', type=int, default=100)
    ap.add_argument('--resamples', type=int, default=1000)
    ap.add_argument('--naive', type=int, default=2, help='resamples timed the naive way')
    args = ap.parse_args()
    num_dets = args.images * args.dets_per_image
    gt, dets_a = synthetic(args.images, args.classes, num_dets)
    dets = {'A': dets_a, 'B': synthetic(args.images, args.classes, num_dets, det_seed=1)[1]}
    rows = draw_resamples(args.images, args.resamples, seed=0)
    print(f'{args.images} images, {len(gt.anns)} GT boxes, {args.classes} classes, '
          f'{num_dets} detections per model, 2 models, B = {args.resamples}')

    # what paired_bootstrap_ap does, timed by step: the matching once per model, then resampling
    evs, t_eval = timed(lambda: {name: coco_matches(gt, d) for name, d in dets.items()})
    counts = resample_counts(rows, args.images)
    fast, t_resample = timed(lambda: {name: _resampled_stats(ev, counts)
                                      for name, ev in evs.items()})
    masks = subset_masks(gt)
    _, t_subsets = timed(lambda: [_resampled_stats(_on_images(ev, m), counts * m)
                                  for ev in evs.values() for m in masks])
    _, t_area_all = timed(lambda: [_resampled_stats(ev, counts, AP_FIELDS[:3])
                                   for ev in evs.values()])
    naive_times = []
    for r in range(args.naive):
        for name, d in dets.items():
            stats, t = timed(lambda: plain(*duplicated(gt, d, rows[r])))
            naive_times.append(t)
            gap = abs(stats[0] - fast[name]['bbox_mAP'][r])
            assert gap < 1e-12, f'resample {r}, model {name}: naive and fast differ by {gap}'
    per_eval = float(np.mean(naive_times))
    t_fast = t_eval + t_resample
    delta = fast['A']['bbox_mAP'] - fast['B']['bbox_mAP']
    lo, hi = np.percentile(delta, [2.5, 97.5]) * 100
    print(f'mean AP over resamples: A {fast["A"]["bbox_mAP"].mean() * 100:.2f}, '
          f'B {fast["B"]["bbox_mAP"].mean() * 100:.2f}; Δ A − B 95% interval '
          f'[{lo:+.2f}, {hi:+.2f}] AP; naive and fast agree on {len(naive_times)} resamples')
    print(f'{"step":<58} {"seconds":>9} {"x fast":>8}')
    for name, t in [('matching (coco_matches), once per model', t_eval),
                    ('resampling: AP, AP50, AP75, APs/m/l', t_resample),
                    ('paired_bootstrap_ap = matching + resampling', t_fast),
                    ('resampling the 3 GT-count subsets, on top', t_subsets),
                    ('resampling AP, AP50, AP75 alone (fields=)', t_area_all),
                    (f'naive: COCOeval per model and resample ({per_eval:.1f} s x '
                     f'{2 * args.resamples})', per_eval * 2 * args.resamples)]:
        print(f'{name:<58} {t:9.1f} {t / t_fast:8.2f}')


def subset_masks(gt):
    """Per GT-count range, which images (sorted ids) it holds."""
    per_image = gt_counts(gt)
    n_gt = np.array([per_image[i] for i in sorted(gt.getImgIds())])
    return [(n_gt >= lo) & (n_gt <= (np.inf if hi is None else hi)) for lo, hi in DEFAULT_RANGES]


if __name__ == '__main__':
    main()
