"""Training telemetry: positive counts and accuracies equal a count by hand, gradient norms equal
per-head torch.autograd.grad, and the hooks leave training as it was."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi, bbox_overlaps
from mmdet.structures.mask import BitmapMasks
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData

from conftest import RoIInputs, config
from prm_rga.errors import InputError
from prm_rga.parallel_roi_head import sample_per_head
from prm_rga.telemetry import (GradNormHook, RoITelemetryHook, grad_fnorms, loss_groups,
                               roi_stats, telemetry_heads)


def hub_scalars(hub, prefix):
    return {k[len(prefix):]: v.current() for k, v in hub.log_scalars.items()
            if k.startswith(prefix)}


def test_roi_stats_by_hand():
    # 3 classes + background (column 3); rows 0-2 positives, 3-6 negatives.
    cls_score = torch.tensor([[5., 0, 0, 0], [0, 0, 5, 0], [0, 5, 0, 0], [0, 0, 0, 5],
                              [0, 0, 0, 5], [5, 0, 0, 0], [0, 0, 0, 5]])
    labels = torch.tensor([0, 1, 1, 3, 3, 3, 3])
    assert roi_stats(cls_score, labels, num_imgs=2, num_classes=3) == {
        'num_pos': 1.5, 'acc_pos': pytest.approx(2 / 3), 'acc_neg': 0.75}
    # no positives: the positive accuracy is left out, not 0 or NaN
    assert roi_stats(cls_score[3:], labels[3:], 1, 3) == {'num_pos': 0.0, 'acc_neg': 0.75}
    # A head with an extra class channel (e.g. an objectness column): background is still
    # label num_classes, not the last channel.
    extra = torch.cat([cls_score, torch.zeros(len(cls_score), 1)], 1)
    assert roi_stats(extra, labels, 2, 3) == roi_stats(cls_score, labels, 2, 3)


def build_roi_head(name):
    cfg = config(name).model
    roi = copy.deepcopy(cfg.roi_head)
    roi.update(train_cfg=cfg.train_cfg.rcnn, test_cfg=cfg.test_cfg.rcnn)
    return MODELS.build(roi)


@pytest.mark.parametrize('name, heads', [
    ('tiny/faster-rcnn_tiny_synth.py', lambda r: [r.bbox_head]),
    ('tiny/faster-rcnn_tiny_prm_synth.py', lambda r: list(r.bbox_head)),
    ('tiny/cascade-rcnn_tiny_synth.py', lambda r: [r.bbox_head[0]]),
    ('tiny/cascade-rcnn_tiny_rga-prm_synth.py', lambda r: list(r.bbox_head[0])),
])
def test_reported_heads(name, heads):
    roi_head = build_roi_head(name)
    assert [id(h) for h in telemetry_heads(roi_head)] == [id(h) for h in heads(roi_head)]


@pytest.mark.parametrize('num_gts', [4, 16])
def test_counts_and_accuracies_equal_a_count_by_hand(num_gts):
    """A sparse and a crowded batch; on the crowded one the two PRM heads' caps (1:1, 1:9) both
    bind, and they sample different positives."""
    roi_inputs = RoIInputs(num_gts=num_gts)
    torch.manual_seed(0)
    roi_head = build_roi_head('tiny/faster-rcnn_tiny_prm_synth.py')
    hook, runner = RoITelemetryHook(), SimpleNamespace(model=SimpleNamespace(roi_head=roi_head))
    hub = MessageHub.get_instance(f'test_roi_telemetry_{num_gts}')
    hook.before_train(runner)
    torch.manual_seed(1)
    roi_head.loss(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    hook.after_train(runner)
    assert 'loss_and_target' not in vars(roi_head.bbox_head[0])  # unwrapped after training
    assert 'sample' not in vars(roi_head.bbox_sampler[0])

    # By hand: the same sampling (same seed), each RoI's predicted class against its label.
    torch.manual_seed(1)
    sampled = sample_per_head(roi_head.bbox_assigner, roi_head.bbox_sampler,
                              roi_head.share_assignment, roi_inputs.x, roi_inputs.rpn_results(),
                              roi_inputs.samples)
    expected = {}
    for k, head in enumerate(roi_head.bbox_head):
        rois = bbox2roi([res.priors for res in sampled[k]])
        with torch.no_grad():
            pred = head(roi_head._roi_feats(roi_inputs.x, rois))[0].argmax(1).tolist()
        labels = [int(lbl) for res in sampled[k]
                  for lbl in list(res.pos_gt_labels) + [5] * len(res.neg_inds)]
        pos = [p == lbl for p, lbl in zip(pred, labels) if lbl < 5]
        neg = [p == lbl for p, lbl in zip(pred, labels) if lbl == 5]
        assert len(pos) == sum(len(res.pos_inds) for res in sampled[k]) > 0
        # positive candidates: the GT boxes and the proposals at IoU >= 0.5 with a GT
        sampler = roi_head.bbox_sampler[k]
        cap = int(sampler.num * sampler.pos_fraction)
        capped = [int((bbox_overlaps(torch.cat([s.gt_instances.bboxes, p.bboxes]),
                                     s.gt_instances.bboxes).max(1).values >= 0.5).sum()) > cap
                  for s, p in zip(roi_inputs.samples, roi_inputs.proposals)]
        expected.update({f'num_pos/h{k}': len(pos) / 2, f'acc_pos/h{k}': sum(pos) / len(pos),
                         f'acc_neg/h{k}': sum(neg) / len(neg),
                         f'pos_capped/h{k}': sum(capped) / len(capped)})
    got = hub_scalars(hub, 'train/')
    assert got == pytest.approx(expected, abs=1e-12)
    assert got['num_pos/h0'] > got['num_pos/h1']  # 1:1 samples more positives than 1:9
    if num_gts == 16:
        assert got['pos_capped/h0'] == got['pos_capped/h1'] == 1.0


def detector_batch(model, num_imgs=2, size=128, with_mask=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(num_imgs):
        xy = torch.rand(4, 2, generator=g) * 80
        boxes = torch.cat([xy, xy + 12 + torch.rand(4, 2, generator=g) * 30], 1)
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0), img_id=i))
        sample.gt_instances = InstanceData(bboxes=boxes,
                                           labels=torch.randint(0, 5, (4, ), generator=g))
        if with_mask:
            masks = torch.zeros(4, size, size, dtype=torch.uint8)
            for m, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
                m[y1:y2, x1:x2] = 1
            sample.gt_instances.masks = BitmapMasks(masks.numpy(), size, size)
        inputs.append(torch.randint(0, 255, (3, size, size), dtype=torch.uint8, generator=g))
        samples.append(sample)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)


def build_detector(name):
    cfg = config(name)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('name, groups', [
    ('tiny/faster-rcnn_tiny_synth.py', {'h0': ['loss_cls', 'loss_bbox']}),
    ('tiny/faster-rcnn_tiny_prm_synth.py', {'h0': ['h0.loss_cls', 'h0.loss_bbox'],
                                            'h1': ['h1.loss_cls', 'h1.loss_bbox']}),
    ('tiny/mask-rcnn_tiny_prm_synth.py', {
        'bbox': ['h0.loss_cls', 'h0.loss_bbox', 'h1.loss_cls', 'h1.loss_bbox'],
        'mask': ['loss_mask']}),
])
def test_grad_norms_equal_autograd_per_head(name, groups):
    model = build_detector(name)
    with_mask = 'mask' in groups
    data = detector_batch(model, with_mask=with_mask)
    param = model.backbone.layer4[0].conv1.weight

    hook = GradNormHook(interval=5)
    runner = SimpleNamespace(model=model, iter=9, optim_wrapper=None)
    hub = MessageHub.get_instance(f'test_grad_norm_{name}')
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)  # iteration 10 of every 5: due
    torch.manual_seed(1)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {g: sorted(n for n in losses if id(losses[n]) in {id(t) for t in terms})
            for g, terms in loss_groups(losses, with_mask).items()} == {
                g: sorted(names) for g, names in groups.items()}
    loss, _ = model.parse_losses(losses)
    loss.backward()  # the graph is still there for the training step
    assert param.grad is not None
    got = hub_scalars(hub, 'train/grad_fnorm/')
    hook.after_train(runner)
    assert 'parse_losses' not in vars(model)

    # Expected: a fresh forward (same seed) per group, backward of that group's loss alone.
    expected = {}
    for group, names in list(groups.items()) + [('sum', sum(groups.values(), []))]:
        model.zero_grad()
        torch.manual_seed(1)
        losses = model.loss(data['inputs'], data['data_samples'])
        sum(losses[n] for n in names).backward()
        expected[group] = float(param.grad.norm())
    assert got == pytest.approx(expected, rel=1e-4)
    assert all(v > 0 for v in got.values())
    # Fig. 5: the norm of the vector sum is at most the sum of the norms.
    assert got['sum'] <= sum(v for k, v in got.items() if k != 'sum') + 1e-6


def test_grad_norms_under_amp_use_the_loss_scale():
    """An fp16 graph whose gradient underflows unscaled: with the loss scale (as AMP's own
    backward uses it) the norm is the true one; a scale that overflows gives no norms."""
    param = torch.full((4, 4), 1.0, requires_grad=True)
    act = (param * 1e-4).half()  # fp16 activations, as under autocast
    losses = {'loss_cls': (act.float() * 1e-8).sum()}  # d loss / d act = 1e-8: 0 in fp16
    true = 1e-12 * 4  # |d loss / d param| = 1e-8 * 1e-4 per entry, 16 entries
    assert grad_fnorms(losses, param, False)['h0'] == 0.0
    scaled = grad_fnorms(losses, param, False, loss_scale=2.0**16)
    assert scaled == {'h0': pytest.approx(true, rel=1e-2), 'sum': pytest.approx(true, rel=1e-2)}
    big = {'loss_cls': (act.float() * 1e3).sum()}
    assert grad_fnorms(big, param, False, loss_scale=2.0**16) == {}  # 6.5e7 > fp16 max


def test_grad_norm_hook_reads_the_scale_of_an_amp_wrapper():
    model = build_detector('tiny/faster-rcnn_tiny_synth.py')
    scaler = SimpleNamespace(get_scale=lambda: 8.0)
    runner = SimpleNamespace(model=model, iter=9, optim_wrapper=SimpleNamespace(loss_scaler=scaler))
    hook = GradNormHook(interval=5)
    hub = MessageHub.get_instance('test_grad_norm_amp')
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    data = detector_batch(model)
    torch.manual_seed(1)
    losses = model.loss(data['inputs'], data['data_samples'])
    model.parse_losses(losses)
    hook.after_train(runner)
    # fp32 model: scaling the loss by 8 and the gradient back by 1/8 changes nothing.
    assert hub_scalars(hub, 'train/grad_fnorm/') == pytest.approx(
        grad_fnorms(losses, model.backbone.layer4[0].conv1.weight, False), rel=1e-5)


def test_grad_norm_hook_off_interval_and_bad_arguments():
    model = build_detector('tiny/faster-rcnn_tiny_synth.py')
    hook = GradNormHook(interval=5)
    runner = SimpleNamespace(model=model, iter=10, optim_wrapper=None)
    hub = MessageHub.get_instance('test_grad_norm_off')
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)  # iteration 11: not due
    data = detector_batch(model)
    model.parse_losses(model.loss(data['inputs'], data['data_samples']))
    assert hub_scalars(hub, 'train/grad_fnorm/') == {}
    hook.after_train(runner)
    with pytest.raises(InputError, match='GradNormHook.param'):
        GradNormHook(param='backbone.layer9.weight').before_train(runner)
    with pytest.raises(InputError, match='GradNormHook.interval'):
        GradNormHook(interval=0)


def test_mask_rcnn_prm_trains_and_predicts_masks():
    model = build_detector('tiny/mask-rcnn_tiny_prm_synth.py')
    data = detector_batch(model, with_mask=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'h0.loss_cls', 'h1.loss_cls', 'loss_mask'} <= set(losses)
    model.eval()
    with torch.no_grad():
        pred = model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    assert pred.masks.shape[1:] == (128, 128) and len(pred.masks) == len(pred.bboxes)
    cfg = config('tiny/mask-rcnn_tiny_prm_synth.py').model
    cfg.roi_head.mask_roi_extractor = None
    with pytest.raises(InputError, match='mask_roi_extractor'):
        MODELS.build(cfg)
