"""The backbone pretrained on synthetic windows: made once, reused, never reused when made
differently, loaded by the tiny detectors' init_cfg, and made by one of several concurrent
first users."""
import json
import multiprocessing
import os

import pytest
import torch
from mmdet.registry import MODELS

from conftest import SMALL_BACKBONE as SMALL, config
from prm_rga.errors import InputError
from prm_rga.synth_backbone import CHECKPOINT, MANIFEST, make_synth_backbone


def backbone_cfg():
    cfg = config('tiny/faster-rcnn_tiny_synth.py').model.backbone
    cfg.pop('init_cfg', None)
    return cfg


def test_made_once_and_reused(tmp_path):
    out = tmp_path / 'bb'
    ckpt = make_synth_backbone(out, backbone_cfg(), **SMALL)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest['args']['num_train'] == 12 and manifest['train_windows'] >= 12
    assert 0 <= manifest['val_accuracy'] <= 1
    assert not (out / 'images').exists()  # the pretraining images are not kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.bb.lock', 'bb']
    mtime = os.path.getmtime(ckpt)
    assert make_synth_backbone(out, backbone_cfg(), **SMALL) == ckpt
    assert os.path.getmtime(ckpt) == mtime
    with pytest.raises(InputError, match=r'pretrained differently \(epochs=1 there, 2 asked'):
        make_synth_backbone(out, backbone_cfg(), **dict(SMALL, epochs=2))
    (tmp_path / 'foreign').mkdir()
    (tmp_path / 'foreign' / 'notes.txt').write_text('not a backbone')
    with pytest.raises(InputError, match='not a pretrained synthetic backbone'):
        make_synth_backbone(tmp_path / 'foreign', backbone_cfg(), **SMALL)


def test_loaded_by_the_detector_init_cfg(tmp_path):
    ckpt = make_synth_backbone(tmp_path / 'bb', backbone_cfg(), **SMALL)
    cfg = config('tiny/faster-rcnn_tiny_synth.py').model
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(ckpt))
    model = MODELS.build(cfg)
    model.init_weights()
    saved = torch.load(ckpt)
    state = model.backbone.state_dict()
    assert saved.keys() == state.keys()
    assert all(torch.equal(saved[k], state[k]) for k in saved)


def _make(out, queue):
    import prm_rga  # noqa: F401  (registers mmdet's modules in the child)
    from mmdet.utils import register_all_modules
    register_all_modules()
    queue.put(str(make_synth_backbone(out, backbone_cfg(), **SMALL)))


def test_concurrent_first_use_makes_it_once(tmp_path, capfd):
    out = tmp_path / 'bb'
    ctx = multiprocessing.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_make, args=(out, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    assert {queue.get(), queue.get()} == {str(out / CHECKPOINT)}
    assert capfd.readouterr().out.count('pretraining the tiny backbone') == 1
