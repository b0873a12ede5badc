"""PRM: one head is mmdet's StandardRoIHead; several heads ensemble as the paper says."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from conftest import RoIInputs, config
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.structures.mask import BitmapMasks
from prm_rga.errors import InputError
from prm_rga.parallel_roi_head import sample_per_head

TINY = 'tiny/faster-rcnn_tiny_synth.py'
PRM = 'tiny/faster-rcnn_tiny_prm_synth.py'
MASK_PRM = 'tiny/mask-rcnn_tiny_prm_synth.py'


def build_roi_head(name, **overrides):
    cfg = config(name).model
    roi = copy.deepcopy(cfg.roi_head)
    roi.update(dict(dict(train_cfg=cfg.train_cfg.rcnn, test_cfg=cfg.test_cfg.rcnn), **overrides))
    return MODELS.build(roi)


def one_head_parallel(standard):
    cfg = config(TINY).model
    parallel = build_roi_head(TINY, type='ParallelRoIHead', bbox_head=[cfg.roi_head.bbox_head],
                              train_cfg=[cfg.train_cfg.rcnn])
    state = {k.replace('bbox_head.', 'bbox_head.0.'): v for k, v in standard.state_dict().items()}
    missing, unexpected = parallel.load_state_dict(state, strict=False)
    assert missing == ['bbox_head.reg_index'] and not unexpected
    return parallel


def test_one_head_equals_standard_roi_head(roi_inputs):
    torch.manual_seed(0)
    standard = build_roi_head(TINY)
    parallel = one_head_parallel(standard)
    x_std = tuple(f.clone().requires_grad_() for f in roi_inputs.x)
    x_par = tuple(f.clone().requires_grad_() for f in roi_inputs.x)

    torch.manual_seed(1)
    losses_std = standard.loss(x_std, roi_inputs.rpn_results(), roi_inputs.samples)
    torch.manual_seed(1)
    losses_par = parallel.loss(x_par, roi_inputs.rpn_results(), roi_inputs.samples)
    assert set(losses_par) == {f'h0.{k}' for k in losses_std}
    for name, value in losses_std.items():
        torch.testing.assert_close(losses_par[f'h0.{name}'], value, rtol=1e-6, atol=1e-7)
    assert losses_std['acc'] > 0  # the inputs do give positives

    sum(v for k, v in losses_std.items() if 'loss' in k).backward()
    sum(v for k, v in losses_par.items() if 'loss' in k).backward()
    for a, b in zip(x_std, x_par):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-7)
    for (name, p), q in zip(standard.bbox_head.named_parameters(),
                            parallel.bbox_head[0].parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-7, msg=name)

    with torch.no_grad():
        pred_std = standard.predict(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
        pred_par = parallel.predict(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    for a, b in zip(pred_std, pred_par):
        assert len(a) > 0
        assert torch.equal(a.labels, b.labels)
        torch.testing.assert_close(b.bboxes, a.bboxes)
        torch.testing.assert_close(b.scores, a.scores)


def test_two_heads_average_logits_and_regress_with_largest_pos_fraction(roi_inputs):
    torch.manual_seed(0)
    head = build_roi_head(PRM)
    assert int(head.bbox_head.reg_index) == 0  # 1:1 (pos_fraction 1/2) beats 1:9
    rois = bbox2roi([p.bboxes for p in roi_inputs.proposals])
    with torch.no_grad():
        feats = head.bbox_roi_extractor(roi_inputs.x, rois)
        (cls0, reg0), (cls1, _) = head.bbox_head[0](feats), head.bbox_head[1](feats)
        results = head.predict_bbox(roi_inputs.x, roi_inputs.metas, roi_inputs.rpn_results(),
                                    rcnn_test_cfg=None)
    scores = F.softmax((cls0 + cls1) / 2, dim=-1)
    boxes = head.bbox_head[0].bbox_coder.decode(
        rois[:, 1:].repeat_interleave(5, 0), reg0.view(-1, 4), max_shape=(128, 128))
    n = len(roi_inputs.proposals[0])
    for i, res in enumerate(results):
        torch.testing.assert_close(res.scores, scores[i * n:(i + 1) * n])
        torch.testing.assert_close(res.bboxes, boxes.view(-1, 20)[i * n:(i + 1) * n])


@pytest.mark.parametrize('index', [0, 1])
def test_test_head_predicts_with_that_head_alone(roi_inputs, index):
    torch.manual_seed(0)
    head = build_roi_head(PRM, test_head=index)
    rois = bbox2roi([p.bboxes for p in roi_inputs.proposals])
    with torch.no_grad():
        cls, reg = head.bbox_head[index](head.bbox_roi_extractor(roi_inputs.x, rois))
        res = head.predict_bbox(roi_inputs.x, roi_inputs.metas, roi_inputs.rpn_results(), None)
    n = len(roi_inputs.proposals[0])
    torch.testing.assert_close(res[0].scores, F.softmax(cls, -1)[:n])
    boxes = head.bbox_head[index].bbox_coder.decode(
        rois[:n, 1:].repeat_interleave(5, 0), reg[:n].view(-1, 4), max_shape=(128, 128))
    torch.testing.assert_close(res[0].bboxes, boxes.view(-1, 20))


def test_each_head_samples_with_its_own_ratio():
    roi_inputs = RoIInputs(num_proposals=1000)
    head = build_roi_head(PRM)
    sampled = sample_per_head(head.bbox_assigner, head.bbox_sampler, head.share_assignment,
                              roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    for img, (sample, proposals) in enumerate(zip(roi_inputs.samples, roi_inputs.proposals)):
        h11, h19 = sampled[0][img], sampled[1][img]
        assign = head.bbox_assigner[0].assign(InstanceData(priors=proposals.bboxes),
                                              sample.gt_instances)
        num = head.bbox_sampler[0].num
        assert int((assign.gt_inds > 0).sum()) > num  # enough positives for both ratios
        assert len(h11.pos_inds) == num // 2 and len(h19.pos_inds) == int(num / 10)
        assert len(h11.pos_inds) + len(h11.neg_inds) == num
        assert len(h19.pos_inds) + len(h19.neg_inds) == num


def test_roi_features_pooled_once_per_distinct_roi(roi_inputs, monkeypatch):
    head = build_roi_head(PRM)
    calls = []
    extractor = head.bbox_roi_extractor
    original = extractor.forward
    monkeypatch.setattr(extractor, 'forward', lambda x, rois, *a, **k: calls.append(
        len(rois)) or original(x, rois, *a, **k))
    head.loss(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    assert len(calls) == 1
    assert calls[0] < sum(s.num for s in head.bbox_sampler) * len(roi_inputs.samples)


def test_prm_trains_with_hard_sampling(roi_inputs):
    cfg = config(PRM).model
    rcnn = copy.deepcopy(cfg.train_cfg.rcnn)
    for r in rcnn:
        r.sampler.type = 'HardRatioSampler'
    head = build_roi_head(PRM, train_cfg=rcnn)
    losses = head.loss(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    assert {'h0.loss_cls', 'h0.loss_bbox', 'h0.acc', 'h1.loss_cls', 'h1.loss_bbox',
            'h1.acc'} == set(losses)
    assert all(torch.isfinite(v).all() for v in losses.values())


def test_config_errors_name_the_field():
    cfg = config(PRM).model
    bad_type = [copy.deepcopy(head) for head in cfg.roi_head.bbox_head]
    bad_type[1]['type'] = 'NoSuchHead'
    with pytest.raises(InputError, match=r'roi_head.bbox_head\[1\].type'):
        build_roi_head(PRM, bbox_head=bad_type)
    with pytest.raises(InputError, match='train_cfg.rcnn must be a list with one'):
        build_roi_head(PRM, train_cfg=cfg.train_cfg.rcnn[:1])
    rcnn = copy.deepcopy(cfg.train_cfg.rcnn)
    rcnn[1].sampler.pos_fraction = 1.5
    with pytest.raises(InputError, match=r'train_cfg.rcnn\[1\].sampler.pos_fraction'):
        build_roi_head(PRM, train_cfg=rcnn)
    with pytest.raises(InputError, match='test_head'):
        build_roi_head(PRM, test_head=2)


def test_regressing_head_known_from_checkpoint_without_train_cfg(roi_inputs):
    trained = build_roi_head(PRM)
    rcnn = copy.deepcopy(config(PRM).model.train_cfg.rcnn)
    rcnn[0].sampler.pos_fraction, rcnn[1].sampler.pos_fraction = 0.1, 0.5
    swapped = build_roi_head(PRM, train_cfg=rcnn)
    assert int(swapped.bbox_head.reg_index) == 1
    inference = build_roi_head(PRM, train_cfg=None)
    with pytest.raises(RuntimeError, match='regresses boxes'):
        inference.predict(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    inference.load_state_dict(trained.state_dict())
    assert int(inference.bbox_head.reg_index) == 0


def test_mask_head_trains_on_the_regressing_heads_positives():
    """Mask R-CNN with PRM: the mask loss is mmdet's Mask R-CNN loss of a StandardRoIHead that
    samples as the regressing head (1:1) does, from the same seed; the 1:9 head's positives
    would give another."""
    cfg = config(MASK_PRM).model
    parallel = build_roi_head(MASK_PRM)
    reg = int(parallel.bbox_head.reg_index)
    standard = cfg.roi_head.copy()
    standard.pop('predict_each_head', None)
    standard = MODELS.build(dict(standard, type='StandardRoIHead', test_cfg=cfg.test_cfg.rcnn,
                                 bbox_head=cfg.roi_head.bbox_head[reg],
                                 train_cfg=cfg.train_cfg.rcnn[reg]))
    state = {k.replace(f'bbox_head.{reg}.', 'bbox_head.'): v
             for k, v in parallel.state_dict().items()
             if not k.startswith('bbox_head.') or k.startswith(f'bbox_head.{reg}.')}
    missing, unexpected = standard.load_state_dict(state, strict=False)
    assert not missing and not unexpected
    inputs = RoIInputs(num_imgs=1)  # heads sample image by image: one image keeps the draws
    for sample in inputs.samples:
        masks = np.zeros((len(sample.gt_instances), 128, 128), np.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, sample.gt_instances.bboxes.int().tolist()):
            mask[y1:y2, x1:(x1 + x2) // 2 + 1] = 1  # the left half of the box
        sample.gt_instances.masks = BitmapMasks(masks, 128, 128)
    torch.manual_seed(1)
    ours = parallel.loss(inputs.x, inputs.rpn_results(), inputs.samples)
    torch.manual_seed(1)
    ref = standard.loss(inputs.x, inputs.rpn_results(), inputs.samples)
    torch.testing.assert_close(ours['loss_mask'], ref['loss_mask'], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours[f'h{reg}.loss_cls'], ref['loss_cls'], rtol=1e-6, atol=1e-7)
