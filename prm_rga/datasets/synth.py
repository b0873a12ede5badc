"""The embedded default dataset: deterministic synthetic detection images, small enough for a CPU.

The paper's effects hinge on the number of ground-truth objects per image (more GT, more positive
proposals, a different best sampling ratio), so the per-image object count is long-tailed like
COCO's: about half the images hold 1-3 objects, 27% hold 4-7 and 22% hold 8 to 24.

COCO variant (``crowd=False``): five shape classes (``SYNTH_CLASSES``), 8-60 px at 128 px, so COCO's
small and medium buckets both occur; every object stays at least 60% visible. Clutter that is not
annotated: textured backgrounds of varying colour, low-contrast irregular blobs, random lines, and
distractor *rings* (hollow ellipse outlines), a shape outside the class list.

Crowd variant (``crowd=True``): one class, upright people (ellipse head, rounded torso, two legs)
standing on a ground plane, nearer ones drawn over farther ones (about 15 per image, long-tailed),
in CrowdHuman's ``.odgt`` format plus the same set as COCO JSON. Ignore regions: far groups of tiny
people (tag "mask") and people less than 10% visible (extra.ignore=1).

Geometry follows COCO: pixel (i, j) covers [i, i+1) x [j, j+1) and polygon vertices are integers.
An object's drawn pixels are exactly what pycocotools' ``annToMask`` gives for its polygon (so the
masks mmdet trains on match the image), plus the pixel at each vertex so that sharp tips show; the
bbox, which is the polygon's bounds, is then exactly the box of the drawn pixels as mmdet computes
boxes from masks (x2 = last column + 1).
"""
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from prm_rga.errors import InputError, check_creatable_dir

VERSION = 1
SYNTH_CLASSES = ('circle', 'square', 'triangle', 'cross', 'star')
MANIFEST = 'manifest.json'
MAX_OCCLUDED = 0.4  # COCO variant: an object may lose at most this share of its pixels
MIN_VISIBLE = 0.1  # crowd variant: people less visible than this are marked extra.ignore=1

# Object-count mix of the COCO variant: (share of images, counts, relative weights of the counts).
COUNT_BUCKETS = (
    (0.500, (1, 2, 3), (45, 33, 22)),
    (0.275, (4, 5, 6, 7), (32, 27, 23, 18)),
    (0.225, tuple(range(8, 25)), tuple(0.84 ** np.arange(17))),
)
HIST_BUCKETS = ((1, 3), (4, 7), (8, None))


def _regular(k, phase=-np.pi / 2):
    t = phase + np.arange(k) * 2 * np.pi / k
    return 0.5 * np.stack([np.cos(t), np.sin(t)], 1)


def _star(points, inner):
    r = np.where(np.arange(2 * points) % 2 == 0, 0.5, 0.5 * inner)
    t = -np.pi / 2 + np.arange(2 * points) * np.pi / points
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


_a, _w = 0.5, 0.17
UNIT_SHAPES = (  # extent about 1, in SYNTH_CLASSES order
    _regular(24),
    0.38 * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]),
    _regular(3),
    np.array([[-_w, -_a], [_w, -_a], [_w, -_w], [_a, -_w], [_a, _w], [_w, _w], [_w, _a],
              [-_w, _a], [-_w, _w], [-_a, _w], [-_a, -_w], [-_w, -_w]]),
    _star(5, 0.42),
)


def make_synth(out_dir, seed=0, num_train=800, num_val=200, image_size=128, crowd=False,
               force=False) -> Path:
    """Write the synthetic set into ``out_dir`` once and reuse it afterwards.

    COCO variant: ``train/000000.png ...``, ``val/...``, ``annotations/instances_{split}.json``.
    Crowd variant: ``Images/{split}_000000.png ...``, ``annotation_{split}.odgt`` and
    ``annotations/instances_{split}.json`` (boxes only, file names relative to ``Images/``).
    Image ids start at 1 in both: some COCO tools treat id 0 as missing.

    Everything is written into a hidden sibling directory and renamed into place after
    ``manifest.json``, so a killed run never leaves a directory that looks complete. An existing set
    made with other arguments, or a directory that is not a synthetic set, raises InputError;
    ``force=True`` replaces an existing synthetic set (never a foreign directory).
    """
    out = Path(out_dir)
    args = _checked(dict(seed=seed, num_train=num_train, num_val=num_val, image_size=image_size))
    args['crowd'] = bool(crowd)
    if not (force and _is_synth(out)) and _reusable(out, args):
        return out
    check_creatable_dir(out, 'synthetic dataset')
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.partial-', dir=out.parent))
    try:
        os.chmod(tmp, 0o755)
        write = _write_crowd if crowd else _write_shapes
        hist = write(tmp, args['seed'], args['num_train'], args['num_val'], args['image_size'])
        manifest = dict(generator=__name__, version=VERSION, args=args,
                        images=dict(train=args['num_train'], val=args['num_val']),
                        gt_histogram=hist)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + '\n')
        if force and _is_synth(out):
            old = out.with_name(f'.{out.name}.old-{os.getpid()}')
            os.rename(out, old)
            shutil.rmtree(old)
        try:
            os.rename(tmp, out)
        except OSError:  # another process finished the same set first
            if not _reusable(out, args):
                raise
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _checked(args):
    for key, value in args.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f'synthetic dataset: {key} must be a non-negative integer, '
                             f'got {value!r}')
    if args['image_size'] < 64:
        raise InputError(f'synthetic dataset: image_size must be at least 64 (objects reach '
                         f'60 px at 128), got {args["image_size"]}')
    return {key: int(value) for key, value in args.items()}


def _read_manifest(out):
    try:
        found = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get('generator') == __name__ else None


def _is_synth(out):
    return _read_manifest(out) is not None


def _reusable(out, args):
    """True if ``out`` holds exactly this set, False if it is free (absent or empty)."""
    found = _read_manifest(out)
    if found is not None:
        want = dict(version=VERSION, **args)
        have = dict(version=found.get('version'), **found.get('args', {}))
        diff = [f'{k}={have.get(k)!r} there, {v!r} asked' for k, v in want.items()
                if have.get(k) != v]
        if not diff:
            return True
        raise InputError(f'{out}: holds a synthetic set made differently ({"; ".join(diff)}); '
                         'pass --force (force=True) to regenerate it, or choose another directory')
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f'{out}: exists and is not a finished synthetic set (no {MANIFEST} '
                         'from this generator); refusing to overwrite it, choose another directory')
    return False


def _rng(seed, *key):
    """One generator per (variant, split, image): num_train never changes the val images."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def _histogram(counts):
    return {str(k): v for k, v in sorted(Counter(counts).items())}


def bucket_shares(histogram):
    """Share of images per GT-count bucket [1,3] / [4,7] / [8,inf), from a manifest histogram."""
    total = sum(histogram.values()) or 1
    shares = {}
    for lo, hi in HIST_BUCKETS:
        label = f'[{lo},{hi if hi else "inf"}{"]" if hi else ")"}'
        shares[label] = sum(v for k, v in histogram.items()
                            if lo <= int(k) and (hi is None or int(k) <= hi)) / total
    return shares


def _write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(',', ':')))


# ---------------------------------------------------------------- drawing helpers

def _texture(rng, size, base):
    """Smooth colour variation plus finer mottling, so background is never a flat colour."""
    coarse = np.clip(base + rng.normal(0, 35, (4, 4, 3)), 0, 255).astype(np.uint8)
    fine = np.clip(128 + rng.normal(0, 18, (size // 8, size // 8, 3)), 0, 255).astype(np.uint8)
    up = lambda a: np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR), np.int16)
    return np.clip(up(coarse) + up(fine) - 128, 0, 255).astype(np.uint8)


def _clutter(draw, rng, size, base):
    """Unannotated blobs, rings (the distractor shape) and lines under the objects."""
    s = size / 128
    for _ in range(rng.integers(1, 5)):  # low-contrast irregular blobs
        c, r = rng.uniform(0, size, 2), rng.uniform(5, 25) * s
        t = np.sort(rng.uniform(0, 2 * np.pi, 9))
        rr = r * rng.uniform(0.5, 1.0, 9)
        pts = np.stack([c[0] + rr * np.cos(t), c[1] + rr * np.sin(t)], 1)
        draw.polygon(pts.ravel().tolist(), fill=_rgb(np.clip(base + rng.normal(0, 30, 3), 0, 255)))
    for _ in range(rng.integers(0, 4)):  # rings: hollow ellipses, look like circles but are not
        c, r = rng.uniform(0, size, 2), rng.uniform(5, 25, 2) * s
        draw.ellipse([c[0] - r[0], c[1] - r[1], c[0] + r[0], c[1] + r[1]],
                     outline=_rgb(rng.uniform(0, 255, 3)), width=int(rng.integers(2, 5) * s))
    for _ in range(rng.integers(1, 7)):
        draw.line(rng.uniform(0, size, 4).tolist(), fill=_rgb(rng.uniform(0, 255, 3)),
                  width=max(1, int(rng.integers(1, 3) * s)))


def _rgb(c):
    return tuple(int(v) for v in c)


def _contrasting(rng, base):
    """A random colour that stands out from the background mean (tries a few, deterministic)."""
    for _ in range(20):
        c = rng.uniform(0, 255, 3)
        if np.abs(c - base).sum() > 120:
            break
    return _rgb(c)


def _mask(polygons, size):
    """The pixels of integer polygons: annToMask's, plus the pixel inside the bounds at each vertex.

    Rasterized in the polygons' window only (pycocotools is exact under integer shifts): faster.
    """
    m = np.zeros((size, size), bool)
    allpts = np.concatenate(polygons)
    (x0, y0), (x1, y1) = np.maximum(allpts.min(0), 0), np.minimum(allpts.max(0), size)
    if x1 <= x0 or y1 <= y0:
        return m
    rles = mask_utils.frPyObjects([(p - [x0, y0]).ravel().astype(float).tolist() for p in polygons],
                                  int(y1 - y0), int(x1 - x0))
    m[y0:y1, x0:x1] = mask_utils.decode(mask_utils.merge(rles))
    for p in polygons:
        lo, hi = p.min(0), p.max(0)
        px = np.minimum(np.maximum(p, lo), np.maximum(hi - 1, lo))
        px = px[((px >= 0) & (px < size)).all(1)]
        m[px[:, 1], px[:, 0]] = True
    return m


def _finish(pixels, rng):
    """Sensor-like pixel noise over everything, objects included."""
    a = pixels + rng.standard_normal(pixels.shape, dtype=np.float32) * rng.uniform(2, 10)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def _box(poly):
    lo, hi = poly.min(0), poly.max(0)
    return [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]


# ---------------------------------------------------------------- COCO variant: shapes

def _object_count(rng, u):
    """u in [0,1) picks the bucket (stratified over a split), rng the count inside it."""
    for share, counts, weights in COUNT_BUCKETS:
        if u < share:
            break
        u -= share
    w = np.asarray(weights, float)
    return int(rng.choice(counts, p=w / w.sum()))


def _shapes_image(rng, n, size):
    s = size / 128
    base = rng.uniform(30, 225, 3)
    canvas = Image.fromarray(_texture(rng, size, base))
    _clutter(ImageDraw.Draw(canvas), rng, size, base)
    pixels = np.array(canvas)
    owner = np.full((size, size), -1, np.int32)
    full, visible, objects = [], np.zeros(0, int), []
    biggest = np.clip(1.6 * 128 / np.sqrt(n), 16, 60) * s  # crowded images get smaller objects
    for _ in range(n):
        cls = int(rng.integers(len(SYNTH_CLASSES)))
        extent = np.exp(rng.uniform(np.log(8 * s), np.log(biggest)))
        for _ in range(30):
            aspect, angle = np.exp(rng.uniform(-0.22, 0.22)), rng.uniform(0, 2 * np.pi)
            c, sn = np.cos(angle), np.sin(angle)
            pts = UNIT_SHAPES[cls] * extent * [np.sqrt(aspect), 1 / np.sqrt(aspect)]
            poly = np.rint(pts @ np.array([[c, sn], [-sn, c]])).astype(int)
            lo, hi = poly.min(0), poly.max(0)
            poly += rng.integers(-lo, size - 1 - hi, endpoint=True)
            mask = _mask([poly], size)
            hit = owner[mask]
            left = visible - np.bincount(hit[hit >= 0], minlength=len(objects))
            if np.all(left >= (1 - MAX_OCCLUDED) * np.asarray(full)):
                break
            extent = max(extent * 0.93, 8 * s)
        else:  # no place that keeps everyone 60% visible: leave it out
            continue
        pixels[mask] = _contrasting(rng, base)
        owner[mask] = len(objects)
        visible = np.append(left, mask.sum())
        full.append(mask.sum())
        objects.append((cls, poly))
    return _finish(pixels, rng), objects


def _polygon_area(p):
    x, y = p[:, 0], p[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def _write_shapes(root, seed, num_train, num_val, image_size):
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(SYNTH_CLASSES)]
    hist = {}
    for key, (split, num) in enumerate((('train', num_train), ('val', num_val))):
        (root / split).mkdir()
        phase = _rng(seed, 0, key).random()
        images, anns, counts = [], [], []
        for i in range(num):
            rng = _rng(seed, 0, key, i)
            # golden-ratio stratification: every prefix of a split follows the count mix
            n = _object_count(rng, (phase + i * 0.6180339887498949) % 1.0)
            img, objects = _shapes_image(rng, n, image_size)
            img.save(root / split / f'{i:06d}.png', compress_level=1)
            images.append(dict(id=i + 1, file_name=f'{i:06d}.png', width=image_size,
                               height=image_size))
            for cls, poly in objects:
                anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=cls + 1,
                                 bbox=_box(poly), area=_polygon_area(poly), iscrowd=0,
                                 segmentation=[poly.ravel().astype(float).tolist()]))
            counts.append(len(objects))
        _write_json(root / 'annotations' / f'instances_{split}.json',
                    dict(images=images, annotations=anns, categories=categories))
        hist[split] = _histogram(counts)
    return hist


# ---------------------------------------------------------------- crowd variant: people

def _ellipse(cx, cy, rx, ry, k=16):
    t = np.arange(k) * 2 * np.pi / k
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _rounded_rect(x0, y0, x1, y1, r):
    t = np.linspace(0, np.pi / 2, 4)
    corners = ((x1 - r, y1 - r), (x0 + r, y1 - r), (x0 + r, y0 + r), (x1 - r, y0 + r))
    return np.concatenate([np.stack([cx + r * np.cos(t + q * np.pi / 2),
                                     cy + r * np.sin(t + q * np.pi / 2)], 1)
                           for q, (cx, cy) in enumerate(corners)])


def _person(rng, cx, foot, height):
    """Head, torso and legs as (integer polygon, colour), head first."""
    w = 0.4 * height * rng.uniform(0.85, 1.15)
    top = foot - height
    skin = np.array([255, 224, 189]) + rng.uniform(0, 1) * np.array([-165, -168, -152])
    parts = [
        (_ellipse(cx + rng.uniform(-0.08, 0.08) * w, top + 0.09 * height,
                  min(0.36 * w, 0.075 * height), 0.09 * height), _rgb(skin)),
        (_rounded_rect(cx - w / 2, top + 0.16 * height, cx + w / 2, foot - 0.42 * height, 0.2 * w),
         _rgb(rng.uniform(0, 255, 3))),
    ]
    legs = _rgb(rng.uniform(20, 140, 3))
    for x0, x1 in ((cx - 0.42 * w, cx - 0.04 * w), (cx + 0.04 * w, cx + 0.42 * w)):
        parts.append((np.array([[x0, foot - 0.46 * height], [x1, foot - 0.46 * height],
                                [x1, foot], [x0, foot]]), legs))
    return [(np.rint(p).astype(int), c) for p, c in parts]


def _crowd_image(rng, size):
    s = size / 128
    horizon = rng.uniform(0.15, 0.4) * size
    sky, ground = rng.uniform(40, 220, 3), rng.uniform(30, 200, 3)
    pixels = _texture(rng, size, sky)
    pixels[int(horizon):] = _texture(rng, size, ground)[int(horizon):]
    canvas = Image.fromarray(pixels)
    _clutter(ImageDraw.Draw(canvas), rng, size, ground)
    pixels = np.array(canvas)
    regions = []
    for _ in range(rng.integers(0, 3)):  # far groups of tiny people: drawn, boxed as one "mask"
        width = rng.uniform(18, 45) * s
        x0, base = rng.uniform(0, size - width), horizon + rng.uniform(0.04, 0.1) * size
        bounds = []
        for _ in range(rng.integers(5, 15)):
            for poly, color in _person(rng, x0 + rng.uniform(0, width),
                                       base + rng.uniform(-3, 3) * s, rng.uniform(5, 9) * s):
                pixels[_mask([poly], size)] = color
                bounds.append(poly)
        regions.append(np.clip(np.concatenate(bounds), 0, size))

    n = int(np.clip(np.rint(rng.lognormal(np.log(14), 0.7)), 1, 100))
    zoom = min(1.0, np.sqrt(12 / n))  # crowded scenes are seen from farther away
    near = 0.1 * size + (1.15 * size - horizon - 0.1 * size) * rng.uniform(0, 1, n) ** 1.5
    feet = np.sort(horizon + near)  # farther people first, nearer ones drawn over them
    owner = np.full((size, size), -1, np.int32)
    people = []
    for j, foot in enumerate(feet):
        height = (foot - horizon) * rng.uniform(0.8, 1.1) * zoom
        parts = _person(rng, rng.uniform(-0.05, 1.05) * size, foot, height)
        masks = [_mask([poly], size) for poly, _ in parts]
        for m, (_, color) in zip(masks, parts):
            pixels[m] = color
        body = np.logical_or.reduce(masks)
        owner[body] = j
        people.append((parts, body, masks[0]))
    return _finish(pixels, rng), owner, people, regions


def _crowd_record(image_id, size, owner, people, regions):
    gtboxes = []
    for j, (parts, body, head) in enumerate(people):
        seen = owner == j
        if not seen.any():
            continue
        rows, cols = np.nonzero(seen)
        allpts = np.concatenate([p for p, _ in parts])
        occ = 1 - seen.sum() / body.sum()
        head_seen = (owner[head] == j).mean() if head.any() else 0.0
        gtboxes.append(dict(
            tag='person', fbox=_box(allpts),
            vbox=[float(cols.min()), float(rows.min()), float(cols.max() + 1 - cols.min()),
                  float(rows.max() + 1 - rows.min())],
            hbox=_box(parts[0][0]),
            extra=dict(ignore=int(1 - occ < MIN_VISIBLE), box_id=len(gtboxes), occ=round(occ, 3)),
            head_attr=dict(ignore=0, occ=int(head_seen < 0.5), unsure=0)))
    for r in regions:
        box = _box(r)
        gtboxes.append(dict(tag='mask', fbox=box, vbox=box, hbox=box,
                            extra=dict(ignore=1, box_id=len(gtboxes), occ=0.0), head_attr={}))
    return dict(ID=image_id, width=size, height=size, gtboxes=gtboxes)


def _coco_from_record(rec, image_id, anns):
    """Full-body boxes clipped to the image; mask regions and ignored people become iscrowd=1."""
    edge = rec['width']
    for g in rec['gtboxes']:
        x, y, w, h = g['fbox']
        x0, y0 = max(x, 0.0), max(y, 0.0)
        w, h = min(x + w, edge) - x0, min(y + h, edge) - y0
        if w < 1 or h < 1:
            continue
        crowd = int(g['tag'] == 'mask' or g['extra']['ignore'] == 1)
        anns.append(dict(id=len(anns) + 1, image_id=image_id, category_id=1,
                         bbox=[x0, y0, w, h], area=w * h, iscrowd=crowd))


def _write_crowd(root, seed, num_train, num_val, image_size):
    (root / 'Images').mkdir()
    hist = {}
    for key, (split, num) in enumerate((('train', num_train), ('val', num_val))):
        lines, images, anns, counts = [], [], [], []
        for i in range(num):
            image_id = f'{split}_{i:06d}'
            img, owner, people, regions = _crowd_image(_rng(seed, 1, key, i), image_size)
            img.save(root / 'Images' / f'{image_id}.png', compress_level=1)
            rec = _crowd_record(image_id, image_size, owner, people, regions)
            lines.append(json.dumps(rec) + '\n')
            images.append(dict(id=i + 1, file_name=f'{image_id}.png', width=image_size,
                               height=image_size))
            first = len(anns)
            _coco_from_record(rec, i + 1, anns)
            counts.append(sum(not a['iscrowd'] for a in anns[first:]))
        (root / f'annotation_{split}.odgt').write_text(''.join(lines))
        _write_json(root / 'annotations' / f'instances_{split}.json',
                    dict(images=images, annotations=anns,
                         categories=[dict(id=1, name='person')]))
        hist[split] = _histogram(counts)
    return hist


# ---------------------------------------------------------------- command line

def synth_command(args) -> int:
    """`prm-rga data synth` (declared in prm_rga_cli.detector)."""
    reused = _is_synth(args.out) and not args.force
    start = time.perf_counter()
    out = make_synth(args.out, seed=args.seed, num_train=args.num_train, num_val=args.num_val,
                     image_size=args.image_size, crowd=args.crowd, force=args.force)
    manifest = _read_manifest(out)
    kind = 'crowd' if args.crowd else 'COCO'
    print(f'{"reused" if reused else "wrote"} synthetic {kind} set in {out} '
          f'({time.perf_counter() - start:.1f} s)')
    for split, hist in manifest['gt_histogram'].items():
        shares = '  '.join(f'{k} {v:.0%}' for k, v in bucket_shares(hist).items())
        print(f'  {split}: {manifest["images"][split]} images, GT per image {shares}')
    return 0
