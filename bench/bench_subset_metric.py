"""Cost of AP on GT-count subsets, against one plain COCO evaluation measured in the same run.

Compares on a random synthetic COCO set: one plain pycocotools evaluation (loadRes, evaluate,
accumulate, summarize), ``gt_count_subset_ap`` with three ranges (all + 3 subsets), and the
naive way (a fresh COCOeval for all images and for each subset). Target: ours <= 1.3x plain.
Each timing is the best of ``--repeat`` runs. Usage:
    python bench/bench_subset_metric.py [--images 500] [--classes 5] [--dets 30000]
"""
import argparse
import contextlib
import io
import time

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from prm_rga_eval.gt_count import gt_count_subset_ap
from prm_rga_eval.gt_count import DEFAULT_RANGES, gt_counts


def synthetic(num_images, num_classes, num_dets, seed=0, det_seed=None):
    """GT with COCO-like long-tailed counts per image; detections: jittered GT plus noise
    (another detector on the same GT with ``det_seed``)."""
    rng = np.random.default_rng(seed)
    images = [dict(id=i + 1, width=640, height=480) for i in range(num_images)]
    anns = []
    for img in images:
        for _ in range(min(int(rng.geometric(0.15)) - 1, 40)):
            w, h = rng.uniform(8, 300, 2)
            anns.append(dict(id=len(anns) + 1, image_id=img['id'], area=w * h,
                             bbox=[*rng.uniform(0, 340, 2), w, h],
                             category_id=int(rng.integers(1, num_classes + 1)),
                             iscrowd=int(rng.random() < 0.02)))
    if det_seed is not None:
        rng = np.random.default_rng([seed, det_seed])
    dets = []
    for ann in rng.choice(anns, size=num_dets // 2):
        box = np.array(ann['bbox']) * rng.normal(1, 0.08, 4)
        dets.append(dict(image_id=ann['image_id'], category_id=ann['category_id'],
                         bbox=box.tolist(), score=float(rng.random())))
    for _ in range(num_dets - len(dets)):
        dets.append(dict(image_id=int(rng.integers(1, num_images + 1)), score=float(rng.random()),
                         category_id=int(rng.integers(1, num_classes + 1)),
                         bbox=[*rng.uniform(0, 500, 2).tolist(), *rng.uniform(8, 200, 2).tolist()]))
    gt = COCO()
    gt.dataset = dict(images=images, annotations=anns,
                      categories=[dict(id=c, name=f'c{c}') for c in range(1, num_classes + 1)])
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt, dets


def plain(gt, dets, img_ids=None):
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes([dict(d) for d in dets]), 'bbox')
        if img_ids is not None:
            ev.params.imgIds = img_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[:6]


def naive(gt, dets):
    counts = gt_counts(gt)
    out = [plain(gt, dets)]
    for lo, hi in DEFAULT_RANGES:
        ids = [i for i, n in counts.items() if n >= lo and (hi is None or n <= hi)]
        out.append(plain(gt, dets, ids))
    return out


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--images', type=int, default=500)
    ap.add_argument('--classes', type=int, default=5)
    ap.add_argument('--dets', type=int, default=30000)
    ap.add_argument('--repeat', type=int, default=2)
    args = ap.parse_args()
    gt, dets = synthetic(args.images, args.classes, args.dets)
    res = gt_count_subset_ap(gt, dets)
    sizes = ', '.join(f'{k} {v["num_images"]}' for k, v in res.items())
    print(f'{args.images} images ({sizes}), {len(gt.anns)} GT boxes, {args.classes} classes, '
          f'{len(dets)} detections; best of {args.repeat}')
    base = best_time(lambda: plain(gt, dets), args.repeat)
    rows = [('plain COCOeval (all images)', base),
            ('gt_count_subset_ap (all + 3 subsets)',
             best_time(lambda: gt_count_subset_ap(gt, dets), args.repeat)),
            ('naive: 4 fresh COCOevals', best_time(lambda: naive(gt, dets), args.repeat))]
    print(f'{"method":<38} {"seconds":>8} {"x plain":>8}')
    for name, t in rows:
        print(f'{name:<38} {t:8.2f} {t / base:8.2f}')


if __name__ == '__main__':
    main()
