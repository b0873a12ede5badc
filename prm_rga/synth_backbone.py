"""The tiny detectors' ImageNet: their backbone pretrained once on a synthetic classification
task, so that a tiny detector starts from learned features as the paper's detectors start from
ImageNet weights, instead of learning edges and shapes while its heads wait for positives.

The task: the class of the object a window is centred on, one of the five shapes or
``background`` (windows of twice the object's size, resized to ``crop`` px; softmax over the
globally pooled last stage), on images of the synthetic generator made with a seed of their own,
never the detection set's. Made on first use, like the data set, and cached: ``out_dir``
holds ``backbone.pth`` (the backbone's state dict, loaded by mmengine's ``Pretrained``
init_cfg) and ``manifest.json`` (version, arguments, held-out accuracy, seconds). Concurrent
first uses (the trials of a suite) wait on a file lock and take the one made. A directory made
with other arguments, or an older version, raises InputError rather than being reused.
"""
import contextlib
import copy
import fcntl
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from prm_rga.datasets.synth import SYNTH_CLASSES, make_synth
from prm_rga.errors import InputError

VERSION = 1
CHECKPOINT = 'backbone.pth'
MANIFEST = 'manifest.json'


def synth_backbone_checkpoint(cfg) -> str:
    """The checkpoint a config's ``synth_backbone`` makes, or None."""
    spec = cfg.get('synth_backbone')
    return str(Path(spec['out_dir']) / CHECKPOINT) if spec else None


def make_synth_backbone(out_dir, backbone: dict, seed=1, num_train=3000, num_val=200,
                        image_size=128, crop=64, epochs=8, batch_size=64, lr=0.1) -> Path:
    """Pretrains ``backbone`` (an mmdet backbone config) once and returns its checkpoint."""
    out = Path(out_dir)
    # the architecture, trained whole: what the detector freezes of it is the detector's
    backbone = dict({k: v for k, v in _plain(backbone).items() if k != 'init_cfg'},
                    frozen_stages=-1, norm_eval=False)
    args = dict(version=VERSION, backbone=backbone, seed=seed, num_train=num_train,
                num_val=num_val, image_size=image_size, crop=crop, epochs=epochs,
                batch_size=batch_size, lr=lr)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f'.{out.name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one maker; the others wait, then reuse
        if _reusable(out, args):
            return out / CHECKPOINT
        tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.partial-', dir=out.parent))
        try:
            print(f'pretraining the tiny backbone on synthetic classification into {out} '
                  '(once; cached)', flush=True)
            with _one_thread():
                trained = _pretrain(tmp, **{k: v for k, v in args.items() if k != 'version'})
            manifest = dict(args=args, **trained)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + '\n')
            os.rename(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out / CHECKPOINT


def _plain(cfg):
    """A config dict as plain JSON values (mmengine ConfigDicts and tuples)."""
    return json.loads(json.dumps(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg))


def _reusable(out: Path, args: dict) -> bool:
    """True if ``out`` holds this backbone, False if it is free (absent or empty)."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return False
    try:
        have = json.loads((out / MANIFEST).read_text())['args']
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f'{out}: exists but is not a pretrained synthetic backbone (no valid '
                         f'{MANIFEST}); remove it or choose another synth_backbone.out_dir')
    if have != args:
        diff = [f'{k}={have.get(k)!r} there, {v!r} asked' for k, v in args.items()
                if have.get(k) != v]
        raise InputError(f'{out}: holds a backbone pretrained differently ({"; ".join(diff)}); '
                         'remove it to pretrain again, or choose another synth_backbone.out_dir')
    return True


def _crops(root: Path, split: str, size: int, crop: int, rng):
    """Windows of twice an object's longer side centred (with jitter) on every object, labelled
    with its class, and one window per image centred on no object, labelled ``background``;
    each resized to ``crop`` px. Returns uint8 (N, 3, crop, crop) RGB and int64 labels."""
    coco = json.loads((root / 'annotations' / f'instances_{split}.json').read_text())
    boxes = {img['id']: [] for img in coco['images']}
    for ann in coco['annotations']:
        boxes[ann['image_id']].append((ann['bbox'], ann['category_id'] - 1))
    windows, labels = [], []
    for img in coco['images']:
        image = Image.open(root / split / img['file_name']).convert('RGB')
        objects = boxes[img['id']]
        for (x, y, w, h), label in objects:
            side = min(max(2 * max(w, h), 16), size)
            cx, cy = x + w / 2 + rng.uniform(-.1, .1) * side, y + h / 2 + rng.uniform(-.1, .1) * side
            windows.append(_window(image, cx, cy, side, crop))
            labels.append(label)
        for _ in range(20):  # a window whose centre lies in no object's box
            side = rng.uniform(16, size / 2)
            cx, cy = rng.uniform(0, size, 2)
            if not any(x <= cx <= x + w and y <= cy <= y + h for (x, y, w, h), _ in objects):
                windows.append(_window(image, cx, cy, side, crop))
                labels.append(len(SYNTH_CLASSES))
                break
    return np.stack(windows).transpose(0, 3, 1, 2).copy(), np.asarray(labels, np.int64)


def _window(image, cx, cy, side, crop):
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    return np.asarray(image.transform((crop, crop), Image.EXTENT, box, Image.BILINEAR))


@contextlib.contextmanager
def _one_thread():
    """Torch on one thread, whatever the caller's: the weights then do not depend on the
    machine's core count (two threads gave other weights, 90.9% against 90.6% held-out
    accuracy, and were no faster: 184 s both)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _pretrain(tmp: Path, backbone, seed, num_train, num_val, image_size, crop, epochs,
              batch_size, lr) -> dict:
    import torch
    from torch import nn

    from mmdet.registry import MODELS
    start = time.perf_counter()
    images = make_synth(tmp / 'images', seed=seed, num_train=num_train, num_val=num_val,
                        image_size=image_size)
    g = np.random.default_rng(seed)
    (x_train, y_train), (x_val, y_val) = (
        _crops(images, split, image_size, crop, g) for split in ('train', 'val'))
    made = time.perf_counter() - start

    torch.manual_seed(seed)
    net = MODELS.build(copy.deepcopy(backbone))
    net.init_weights()
    net.eval()
    with torch.no_grad():
        channels = net(torch.zeros(1, 3, crop, crop))[-1].shape[1]
    head = nn.Linear(channels, len(SYNTH_CLASSES) + 1)
    params = list(net.parameters()) + list(head.parameters())
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    steps = epochs * (len(x_train) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps,
                                                   pct_start=0.1)
    # the detector's normalisation (its data preprocessor's mean and std, on RGB)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)

    def logits(batch):
        return head(net((torch.from_numpy(batch).float() - mean) / std)[-1].mean((2, 3)))

    net.train()
    for epoch in range(epochs):
        print(f'pretraining epoch {epoch + 1}/{epochs}: {len(x_train)} windows', flush=True)
        order = g.permutation(len(x_train))
        for k in range(len(x_train) // batch_size):
            idx = order[k * batch_size:(k + 1) * batch_size]
            batch = x_train[idx]
            flip = g.random(len(idx)) < 0.5
            batch[flip] = batch[flip, :, :, ::-1]
            loss = nn.functional.cross_entropy(logits(batch), torch.from_numpy(y_train[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([logits(x_val[k:k + 256]).argmax(1)
                          for k in range(0, len(x_val), 256)])
    accuracy = float((pred.numpy() == y_val).mean())
    torch.save(net.state_dict(), tmp / CHECKPOINT)
    shutil.rmtree(images)
    return dict(val_accuracy=accuracy, train_windows=len(x_train), images_seconds=round(made, 1),
                train_seconds=round(time.perf_counter() - start - made, 1))
