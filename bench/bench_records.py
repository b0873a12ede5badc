"""Size of one run's evaluation record (``eval_records.npz``) at paper scale.

COCO-val-sized: 5,000 images with the synthetic GT of ``bench_subset_metric``, 100 detections
per image from the model and from each of two PRM heads (float32 boxes and scores as a
detector predicts them), written by ``prm_rga_eval.records``; prints the file size and the
time to write and to load it. Usage: python bench/bench_records.py [--images 5000] [--heads 2]
"""
import argparse
import os
import tempfile
import time

import numpy as np
from bench_subset_metric import synthetic

from prm_rga_eval.records import load_record, record_arrays, atomic_savez


def predictions(num_images, num_dets, num_classes, rng):
    out = []
    for _ in range(num_images):
        xy = rng.uniform(0, 600, (num_dets, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(4, 300, (num_dets, 2))], 1)
        out.append(dict(bboxes=boxes.astype(np.float32),
                        scores=np.sort(rng.uniform(0.05, 1, num_dets)).astype(np.float32)[::-1],
                        labels=rng.integers(0, num_classes, num_dets)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--images', type=int, default=5000)
    ap.add_argument('--dets-per-image', type=int, default=100)
    ap.add_argument('--heads', type=int, default=2)
    args = ap.parse_args()
    gt, _ = synthetic(args.images, 80, 0)
    rng = np.random.default_rng(0)
    img_ids = sorted(gt.getImgIds())
    sources = {name: predictions(args.images, args.dets_per_image, 80, rng)
               for name in ['model', *(f'h{i}' for i in range(args.heads))]}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'eval_records.npz')
        t0 = time.perf_counter()
        atomic_savez(path, record_arrays(gt, sorted(gt.getCatIds()), img_ids, sources))
        t1 = time.perf_counter()
        load_record(path)
        t2 = time.perf_counter()
        size = os.path.getsize(path)
    print(f'{args.images} images, {len(gt.anns)} GT boxes, {len(sources)} sources x '
          f'{args.dets_per_image} detections per image: {size / 2**20:.1f} MiB '
          f'({size / (args.images * args.dets_per_image * len(sources)):.1f} bytes per '
          f'detection); write {t1 - t0:.1f} s, load {t2 - t1:.1f} s')


if __name__ == '__main__':
    main()
