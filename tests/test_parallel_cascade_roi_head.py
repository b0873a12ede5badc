"""Cascade PRM: one head per stage is mmdet's CascadeRoIHead; two heads train and predict."""
import copy

import torch

from conftest import config
from mmdet.registry import MODELS

CASCADE = 'tiny/cascade-rcnn_tiny_synth.py'
PRM = 'tiny/cascade-rcnn_tiny_rga-prm_synth.py'


def build(name, **overrides):
    cfg = config(name).model
    roi = copy.deepcopy(cfg.roi_head)
    roi.update(dict(dict(train_cfg=cfg.train_cfg.rcnn, test_cfg=cfg.test_cfg.rcnn), **overrides))
    return MODELS.build(roi)


def test_one_head_per_stage_equals_cascade_roi_head(roi_inputs):
    torch.manual_seed(0)
    cascade = build(CASCADE)
    cfg = config(CASCADE).model
    parallel = build(CASCADE, type='ParallelCascadeRoIHead',
                     bbox_head=[[h] for h in cfg.roi_head.bbox_head],
                     train_cfg=[[r] for r in cfg.train_cfg.rcnn])
    state = {k.replace(f'bbox_head.{s}.', f'bbox_head.{s}.0.'): v
             for k, v in cascade.state_dict().items() for s in range(3)
             if k.startswith(f'bbox_head.{s}.') or (s == 0 and not k.startswith('bbox_head.'))}
    missing, unexpected = parallel.load_state_dict(state, strict=False)
    assert sorted(missing) == [f'bbox_head.{s}.reg_index' for s in range(3)] and not unexpected

    torch.manual_seed(1)
    ref = cascade.loss(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    torch.manual_seed(1)
    ours = parallel.loss(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    assert set(ours) == {k.replace('.', '.h0.', 1) for k in ref}
    for name, value in ref.items():
        torch.testing.assert_close(ours[name.replace('.', '.h0.', 1)], value,
                                   rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        pred_ref = cascade.predict(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
        pred_ours = parallel.predict(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    for a, b in zip(pred_ref, pred_ours):
        assert len(a) > 0 and torch.equal(a.labels, b.labels)
        torch.testing.assert_close(b.bboxes, a.bboxes)
        torch.testing.assert_close(b.scores, a.scores)


def test_prm_cascade_trains_and_predicts(roi_inputs):
    torch.manual_seed(0)
    head = build(PRM)
    losses = head.loss(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    assert {f's{s}.h{k}.loss_cls' for s in range(3) for k in range(2)} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in head.bbox_head.parameters())
    with torch.no_grad():
        results = head.predict(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
        head.test_head = 1
        single = head.predict(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    assert len(results) == 2 and all(len(r) > 0 for r in results)
    assert not torch.equal(results[0].scores, single[0].scores)


def test_each_stage_averages_its_heads_logits_and_regresses_with_its_regressing_head(
        roi_inputs):
    """Two heads per stage sharing their FC layers but not their classifiers and regressors:
    averaging the logits is then one classifier with the mean weights, so the PRM cascade must
    predict as mmdet's CascadeRoIHead whose stage heads are the regressing heads with that
    classifier (scores, labels, boxes refined stage by stage)."""
    torch.manual_seed(0)
    prm = build(PRM).eval()
    cascade = build(CASCADE).eval()
    state = {}
    with torch.no_grad():
        for s, heads in enumerate(prm.bbox_head):
            reg, other = int(heads.reg_index), 1 - int(heads.reg_index)
            assert heads[reg].fc_cls.weight.ne(heads[other].fc_cls.weight).any()
            assert heads[reg].fc_reg.weight.ne(heads[other].fc_reg.weight).any()
            for name, p in heads[other].named_parameters():
                if not name.startswith(('fc_cls', 'fc_reg')):
                    p.copy_(dict(heads[reg].named_parameters())[name])
            for name, v in heads[reg].state_dict().items():
                if name.startswith('fc_cls'):
                    v = (v + heads[other].state_dict()[name]) / 2
                state[f'bbox_head.{s}.{name}'] = v
    missing, unexpected = cascade.load_state_dict(state, strict=False)
    assert not unexpected and all(not k.startswith('bbox_head.') for k in missing)
    with torch.no_grad():
        ours = prm.predict(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
        ref = cascade.predict(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    for a, b in zip(ref, ours):
        assert len(a) > 0 and torch.equal(a.labels, b.labels)
        torch.testing.assert_close(b.scores, a.scores, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b.bboxes, a.bboxes, rtol=1e-5, atol=1e-4)
