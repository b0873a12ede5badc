"""PRM models start where the single-head models start: every parameter after `init_weights()`
(as mmengine's Runner calls it) has the initialiser of its single-head counterpart, and the
bbox-head container answers every name mmdet's RoI heads read of a bbox head."""
import copy
import inspect
import re

import pytest
import torch

from conftest import config
from mmdet.models.roi_heads import BaseRoIHead, CascadeRoIHead, StandardRoIHead
from mmdet.registry import MODELS
from prm_rga import ParallelBBoxHeads, ParallelCascadeRoIHead, ParallelRoIHead

SINGLE_AND_PRM = {
    'faster': ('tiny/faster-rcnn_tiny_synth.py', 'tiny/faster-rcnn_tiny_prm_synth.py'),
    'cascade': ('tiny/cascade-rcnn_tiny_synth.py', 'tiny/cascade-rcnn_tiny_rga-prm_synth.py'),
    'mask': ('tiny/mask-rcnn_tiny_synth.py', 'tiny/mask-rcnn_tiny_prm_synth.py'),
}
HEAD_INDEX = re.compile(r'^(roi_head\.bbox_head\.(?:\d+\.)?)\d+\.')  # '...bbox_head[.s].k.'


def initialised(model_cfg, seed=0):
    """State after ``init_weights``, the backbone from its own initialiser: both sides would
    load the same pretrained file, which the tests do not make."""
    torch.manual_seed(seed)
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    model.init_weights()
    return {k: v for k, v in model.state_dict().items() if not k.endswith('reg_index')}


def one_head_prm(name):
    """The single-head config as a PRM config with one head (per stage)."""
    cfg = config(name).model
    cascade = cfg.roi_head.type == 'CascadeRoIHead'
    if cascade:
        cfg.roi_head.type = 'ParallelCascadeRoIHead'
        cfg.roi_head.bbox_head = [[head] for head in cfg.roi_head.bbox_head]
        cfg.train_cfg.rcnn = [[rcnn] for rcnn in cfg.train_cfg.rcnn]
    else:
        cfg.roi_head.type = 'ParallelRoIHead'
        cfg.roi_head.bbox_head = [cfg.roi_head.bbox_head]
        cfg.train_cfg.rcnn = [cfg.train_cfg.rcnn]
    return cfg


@pytest.mark.parametrize('kind', list(SINGLE_AND_PRM))
def test_one_head_prm_initialises_exactly_as_the_single_head_model(kind):
    """Same seed, same modules built and initialised in the same order: the same numbers."""
    name = SINGLE_AND_PRM[kind][0]
    single = initialised(config(name).model)
    prm = initialised(one_head_prm(name))
    renamed = {HEAD_INDEX.sub(r'\1', k): v for k, v in prm.items()}
    assert len(renamed) == len(prm) and renamed.keys() == single.keys()
    for key, value in single.items():
        assert torch.equal(renamed[key], value), key


def check_like(value, reference, key):
    """``value`` was drawn from the initialiser that drew ``reference``."""
    if value.dtype in (torch.int64, torch.int32) or reference.numel() == 1:
        assert torch.equal(value, reference), key
        return
    values, ref = value.float(), reference.float()
    if torch.all(ref == ref.flatten()[0]):  # a constant initialiser: zero biases, BN weights
        assert torch.all(values == ref.flatten()[0]), key
        return
    # A random initialiser: the std agrees to sampling error (~1/sqrt(2n)), the mean is ~0.
    tolerance = 6 / (2 * ref.numel())**0.5
    assert abs(values.std() / ref.std() - 1) < tolerance, (key, values.std(), ref.std())
    assert abs(values.mean() - ref.mean()) < 6 * ref.std() / ref.numel()**0.5, key


@pytest.mark.parametrize('kind', list(SINGLE_AND_PRM))
def test_every_prm_parameter_has_its_single_head_initialiser(kind):
    """Two heads per stage: each head's parameters look like the single head's (Normal 0.01
    for fc_cls, 0.001 for fc_reg, Xavier for the shared fcs, zero biases); the rest of the
    model too. Before the fix the heads kept PyTorch's default init (fc_cls std 0.036)."""
    single_name, prm_name = SINGLE_AND_PRM[kind]
    single = initialised(config(single_name).model, seed=0)
    prm = initialised(config(prm_name).model, seed=1)
    heads = {m.group(0) for m in map(HEAD_INDEX.match, prm) if m}
    assert len(heads) == (6 if kind == 'cascade' else 2)
    for key, value in prm.items():
        check_like(value, single[HEAD_INDEX.sub(r'\1', key)], key)
    fc_cls = single['roi_head.bbox_head.fc_cls.weight' if kind != 'cascade' else
                    'roi_head.bbox_head.0.fc_cls.weight']
    assert abs(fc_cls.std() - 0.01) < 0.001  # mmdet's Shared2FCBBoxHead init_cfg ran


def inherited_mmdet_methods(ours) -> dict:
    """The methods of mmdet's RoI heads that ours inherit (not override), by name."""
    return {attr: fn for base in (StandardRoIHead, CascadeRoIHead, BaseRoIHead)
            if issubclass(ours, base) for attr, fn in vars(base).items()
            if callable(fn) and getattr(ours, attr) is fn}


def names_read_of_bbox_head(ours):
    """Attribute names that the mmdet methods our RoI head runs read of a bbox head.

    ``bbox_loss`` is inherited but never runs: only mmdet's ``loss`` calls it, and ours
    replaces ``loss`` (asserted here, so that this stays true)."""
    methods = inherited_mmdet_methods(ours)
    callers = [name for name, fn in methods.items() if 'self.bbox_loss(' in inspect.getsource(fn)]
    assert not callers and 'self.bbox_loss(' not in inspect.getsource(ours)
    methods.pop('bbox_loss')
    pattern = re.compile(r'\bbbox_head(?:\[[^\]]*\])?\.(\w+)')
    return {n for fn in methods.values() for n in pattern.findall(inspect.getsource(fn))}


@pytest.mark.parametrize('ours', [ParallelRoIHead, ParallelCascadeRoIHead])
def test_every_name_mmdet_reads_of_a_bbox_head_is_answered(ours):
    """What mmdet's inherited test-time code reads of ``self.bbox_head`` (or of a cascade
    stage's head) is defined on ``ParallelBBoxHeads`` itself, or is a Module method; a name a
    new mmdet reads shows up here rather than as a silent fallback."""
    names = names_read_of_bbox_head(ours)
    assert {'predict_by_feat', 'num_classes'} <= names  # the scan does find mmdet's reads
    if ours is ParallelCascadeRoIHead:
        assert 'regress_by_class' in names
    missing = {n for n in names if not hasattr(ParallelBBoxHeads, n)}
    assert not missing, f'ParallelBBoxHeads does not define {sorted(missing)}'


def test_unforwarded_names_fail_loudly():
    heads = config(SINGLE_AND_PRM['faster'][1]).model
    roi = MODELS.build(dict(heads.roi_head, train_cfg=heads.train_cfg.rcnn))
    assert roi.bbox_head.num_classes == 5 and roi.bbox_head.custom_activation is False
    with pytest.raises(AttributeError):
        roi.bbox_head.fc_cls  # a head's own module, not the container's
