"""Evaluation dumps (scores.npz, rpn_pos_vs_gt.csv) and per-head predictions for per-head AP."""
import copy
import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from pycocotools import mask as mask_utils

from conftest import config
from mmdet.registry import MODELS
from prm_rga.datasets import make_synth
from prm_rga.errors import InputError
from prm_rga.eval_dump import EvalDumpHook

PRM = 'tiny/faster-rcnn_tiny_prm_synth.py'


def test_predict_each_head_equals_test_head(roi_inputs):
    cfg = config(PRM).model
    roi = copy.deepcopy(cfg.roi_head)
    roi.update(train_cfg=cfg.train_cfg.rcnn, test_cfg=cfg.test_cfg.rcnn, predict_each_head=True)
    torch.manual_seed(0)
    roi_head = MODELS.build(roi).eval()
    samples = copy.deepcopy(roi_inputs.samples)
    with torch.no_grad():
        ensemble = roi_head.predict(roi_inputs.x, roi_inputs.rpn_results(), samples)
        roi_head.predict_each_head = False
        alone = []
        for i in range(2):
            roi_head.test_head = i
            alone.append(roi_head.predict(roi_inputs.x, roi_inputs.rpn_results(),
                                          copy.deepcopy(roi_inputs.samples)))
        roi_head.test_head = None
        again = roi_head.predict(roi_inputs.x, roi_inputs.rpn_results(), roi_inputs.samples)
    assert roi_head.test_head is None  # restored
    for k, sample in enumerate(samples):
        for i in range(2):
            got = sample.get(f'pred_instances_h{i}')
            for field in ('bboxes', 'scores', 'labels'):
                torch.testing.assert_close(got[field], alone[i][k][field])
        torch.testing.assert_close(ensemble[k].scores, again[k].scores)
    assert not samples[0].pred_instances_h0.scores.equal(samples[0].pred_instances_h1.scores)


@pytest.fixture(scope='module')
def small_synth(tmp_path_factory):
    root = tmp_path_factory.mktemp('synth')
    make_synth(root, seed=3, num_train=8, num_val=12)
    return str(root)


def val_loader(small_synth):
    cfg = config(PRM)
    loader = copy.deepcopy(cfg.val_dataloader)
    loader.update(num_workers=0, persistent_workers=False, batch_size=5)
    loader.dataset.data_root = small_synth + '/'
    return Runner.build_dataloader(loader)


def test_dumps_match_an_independent_count(tmp_path, small_synth):
    torch.manual_seed(0)
    model = MODELS.build(config(PRM).model)
    runner = SimpleNamespace(model=model, work_dir=str(tmp_path), val_loop=SimpleNamespace(
        dataloader=val_loader(small_synth)), logger=MMLogger.get_instance('test_eval_dump'))
    EvalDumpHook().after_train(runner)
    assert model.training  # left as it was

    with open(tmp_path / 'artifacts' / 'rpn_pos_vs_gt.csv') as f:
        rows = list(csv.DictReader(f))
    scores = dict(np.load(tmp_path / 'artifacts' / 'scores.npz'))
    assert sorted(scores) == ['h0', 'h1', 'image_id', 'label']

    # Independently: GT counts from the JSON, IoU by pycocotools on rescaled RPN proposals.
    coco = json.load(open(f'{small_synth}/annotations/instances_val.json'))
    model.eval()
    expected, own_softmax = {}, {0: [], 1: []}
    with torch.no_grad():
        for batch in val_loader(small_synth):
            data = model.data_preprocessor(batch, False)
            x = model.extract_feat(data['inputs'])
            # each head's own softmax over the proposals: mmdet's prediction by that head alone
            # (test_head), without NMS, on the proposals in input-image coordinates
            proposals = model.rpn_head.predict(x, data['data_samples'], rescale=False)
            metas = [sample.metainfo for sample in data['data_samples']]
            for i in own_softmax:
                model.roi_head.test_head = i
                own_softmax[i] += [r.scores for r in model.roi_head.predict_bbox(
                    x, metas, copy.deepcopy(proposals), rcnn_test_cfg=None)]
            model.roi_head.test_head = None
            for sample, props in zip(data['data_samples'],
                                     model.rpn_head.predict(x, data['data_samples'], rescale=True)):
                gt = [a['bbox'] for a in coco['annotations']
                      if a['image_id'] == sample.img_id and not a['iscrowd']]
                boxes = props.bboxes.double().numpy()
                dt = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).tolist()
                iou = mask_utils.iou(dt, gt, [0] * len(gt)) if gt else np.zeros((len(dt), 0))
                num_pos = int((np.asarray(iou).reshape(len(dt), -1).max(1, initial=0)
                               >= 0.5 - 1e-6).sum())
                expected[sample.img_id] = (len(gt), num_pos, len(dt))
    assert {int(r['image_id']): (int(r['num_gt']), int(r['num_pos'])) for r in rows} == {
        k: v[:2] for k, v in expected.items()}
    assert len(rows) == 12 and sum(int(r['num_pos']) for r in rows) > 0
    # scores: every proposal of every image, label positive exactly where counted positive
    n = sum(v[2] for v in expected.values())
    assert scores['h0'].shape == scores['h1'].shape == (n, 6)
    assert scores['h0'].dtype == np.float32
    np.testing.assert_allclose(scores['h0'].sum(1), 1, rtol=1e-5)
    assert not np.allclose(scores['h0'], scores['h1'])  # two different heads
    for i, parts in own_softmax.items():
        np.testing.assert_allclose(scores[f'h{i}'], torch.cat(parts).numpy(), rtol=1e-5,
                                   atol=1e-7)
    for img_id, (_, num_pos, num) in expected.items():
        labels = scores['label'][scores['image_id'] == img_id]
        assert len(labels) == num and (labels < 5).sum() == num_pos

    # truncated: the first 4 images, 10 proposals each; the CSV still covers all images
    dump = EvalDumpHook(max_images=4, max_per_image=10).dump(model, val_loader(small_synth))
    assert dump[0]['h1'].shape == (40, 6) and len(np.unique(dump[0]['image_id'])) == 4
    assert len(dump[1]) == 12
    with pytest.raises(InputError, match='max_per_image'):
        EvalDumpHook(max_per_image=0)
