"""AP on GT-count subsets: equal to a fresh pycocotools COCOeval per subset."""
import contextlib
import copy
import io
import json

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS
from mmengine.evaluator import Evaluator
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from prm_rga.errors import InputError
from prm_rga.metrics import gt_count_subset_ap

AP_FIELDS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')


def random_coco(seed, num_images=60, num_cats=3):
    """A COCO dict with long-tailed GT counts (0 included), crowd boxes, and detections."""
    rng = np.random.default_rng(seed)
    img_ids = sorted(rng.choice(10_000, num_images, replace=False).tolist())
    images = [dict(id=i, width=640, height=480, file_name=f'{i}.png') for i in img_ids]
    cats = [dict(id=c, name=f'c{c}') for c in range(1, num_cats + 1)]
    anns, dets = [], []
    for i in img_ids:
        for _ in range(int(rng.choice([0, 1, 2, 3, 4, 6, 9, 14]))):
            w, h = rng.uniform(4, 300, 2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            ann = dict(id=len(anns) + 1, image_id=i, category_id=int(rng.integers(1, num_cats + 1)),
                       bbox=[x, y, w, h], area=w * h, iscrowd=int(rng.random() < 0.1))
            anns.append(ann)
            if rng.random() < 0.8:  # a jittered true detection
                box = (np.array([x, y, w, h]) + rng.normal(0, 0.1, 4) * [w, h, w, h]).tolist()
                dets.append(dict(image_id=i, category_id=ann['category_id'], bbox=box,
                                 score=round(float(rng.random()), 2)))  # rounded: ties
        if rng.random() < 0.8:
            for _ in range(int(rng.integers(0, 6))):  # false positives
                w, h = rng.uniform(4, 200, 2)
                dets.append(dict(image_id=i, category_id=int(rng.integers(1, num_cats + 1)),
                                 bbox=[*rng.uniform(0, 600, 2).tolist(), w, h],
                                 score=round(float(rng.random()), 2)))
    return dict(images=images, annotations=anns, categories=cats), dets


def coco_of(dataset):
    gt = COCO()
    gt.dataset = copy.deepcopy(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def fresh_stats(gt, dets, img_ids=None):
    """One plain pycocotools evaluation, restricted to img_ids when given."""
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(dets)), 'bbox')
        if img_ids is not None:
            ev.params.imgIds = img_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(AP_FIELDS, ev.stats[:6]))


def gt_count_of(dataset):
    counts = {img['id']: 0 for img in dataset['images']}
    for ann in dataset['annotations']:
        counts[ann['image_id']] += not ann['iscrowd']
    return counts


@pytest.mark.parametrize('seed,ranges', [
    (0, ((1, 3), (4, 7), (8, None))),
    (1, ((1, 3), (4, 7), (8, None))),
    (2, ((0, 0), (1, 2), (3, 5), (6, None))),
    (3, ((8, None), (1, 1))),
])
def test_equals_fresh_cocoeval_per_subset(seed, ranges):
    dataset, dets = random_coco(seed)
    counts = gt_count_of(dataset)
    gt = coco_of(dataset)
    res = gt_count_subset_ap(gt, dets, ranges)
    assert list(res) == ['all'] + [f'gt{lo}-{"inf" if hi is None else hi}' for lo, hi in ranges]
    expected = {'all': (fresh_stats(gt, dets), len(counts))}
    for lo, hi in ranges:
        ids = [i for i, n in counts.items() if n >= lo and (hi is None or n <= hi)]
        assert ids, 'every subset of this test has images'
        expected[f'gt{lo}-{"inf" if hi is None else hi}'] = (fresh_stats(gt, dets, ids), len(ids))
    for name, (stats, num_images) in expected.items():
        assert res[name]['num_images'] == num_images
        for k in AP_FIELDS:
            assert res[name][k] == pytest.approx(stats[k], abs=1e-9), (name, k)
    assert res['all']['bbox_mAP'] > 0.1  # the data exercises real matches


def test_accepts_a_json_path_and_leaves_detections_alone(tmp_path):
    dataset, dets = random_coco(4, num_images=20)
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(dataset))
    before = copy.deepcopy(dets)
    assert gt_count_subset_ap(str(path), dets) == gt_count_subset_ap(coco_of(dataset), dets)
    assert dets == before


def test_empty_subset_gives_minus_one():
    dataset, dets = random_coco(5, num_images=20)
    res = gt_count_subset_ap(coco_of(dataset), dets, ((1, 3), (100, None)))
    assert res['gt100-inf'] == {**dict.fromkeys(AP_FIELDS, -1.0), 'num_images': 0}
    assert res['gt1-3']['num_images'] > 0


def test_empty_detection_list_gives_zero_ap():
    dataset, _ = random_coco(6, num_images=30)
    res = gt_count_subset_ap(coco_of(dataset), [])
    for name, stats in res.items():
        assert stats['num_images'] > 0, name
        assert stats['bbox_mAP'] == 0.0 and stats['bbox_mAP_50'] == 0.0, name


def test_images_without_gt_only():
    dataset, _ = random_coco(7, num_images=5)
    dataset['annotations'] = []
    gt = coco_of(dataset)
    dets = [dict(image_id=dataset['images'][0]['id'], category_id=1, bbox=[1, 1, 5, 5], score=0.5)]
    res = gt_count_subset_ap(gt, dets)
    assert res['all']['num_images'] == 5 and res['all']['bbox_mAP'] == -1.0  # no GT: absent
    assert all(res[k]['num_images'] == 0 for k in ('gt1-3', 'gt4-7', 'gt8-inf'))


def test_unknown_image_ids_are_named():
    dataset, dets = random_coco(8, num_images=10)
    dets = dets + [dict(image_id=123456, category_id=1, bbox=[0, 0, 5, 5], score=0.3)]
    with pytest.raises(InputError, match='123456'):
        gt_count_subset_ap(coco_of(dataset), dets)


@pytest.mark.parametrize('bbox, match', [
    ([1, 2, -3, 4], r'detections\[3\]\.bbox: \[1, 2, -3, 4\] has a negative width'),
    ([1, 2, 3, -4], 'negative height'),
    ([1, 2, 3], 'not a list of 4 numbers'),
    ([1, 2, float('nan'), 4], 'not a list of 4 numbers'),
])
def test_bad_detection_boxes_are_named(bbox, match):
    dataset, dets = random_coco(8, num_images=10)
    dets[3] = dict(dets[3], bbox=bbox)
    with pytest.raises(InputError, match=match):
        gt_count_subset_ap(coco_of(dataset), dets)


@pytest.mark.parametrize('ranges,match', [
    ((), 'empty'),
    (((1, 5), (4, None)), 'overlap'),
    (((8, None), (10, 12)), 'overlap'),
    (((5, 1), ), 'inverted'),
    (((1, 2, 3), ), 'pair'),
    (((-1, 2), ), 'pair'),
])
def test_bad_ranges(ranges, match):
    dataset, dets = random_coco(9, num_images=5)
    with pytest.raises(InputError, match=match):
        gt_count_subset_ap(coco_of(dataset), dets, ranges)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(InputError, match='nope.json'):
        gt_count_subset_ap(str(tmp_path / 'nope.json'), [])


def test_metric_through_evaluator_equals_function(tmp_path):
    dataset, _ = random_coco(10, num_images=25)
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(dataset))
    metric = METRICS.build(dict(type='GTCountSubsetMetric', ann_file=str(path),
                                ranges=[[1, 3], [4, 7], [8, None]]))
    evaluator = Evaluator([metric])
    classes = [c['name'] for c in dataset['categories']]
    evaluator.dataset_meta = dict(classes=classes)
    g = torch.Generator().manual_seed(0)
    samples, dets = [], []
    for img in dataset['images']:
        own = [a for a in dataset['annotations'] if a['image_id'] == img['id']]
        xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in own)] +
                            [[10.0, 10.0, 90.0, 70.0]], dtype=torch.float32)
        xyxy = xyxy + torch.randn(xyxy.shape, generator=g) * 4
        labels = torch.tensor([a['category_id'] - 1 for a in own] + [0])
        scores = torch.rand(len(xyxy), generator=g)
        samples.append(dict(img_id=img['id'], ori_shape=(img['height'], img['width']),
                            pred_instances=dict(bboxes=xyxy, scores=scores, labels=labels)))
        for (x1, y1, x2, y2), s, label in zip(xyxy.tolist(), scores.tolist(), labels.tolist()):
            dets.append(dict(image_id=img['id'], category_id=label + 1,
                             bbox=[x1, y1, x2 - x1, y2 - y1], score=s))
    for start in range(0, len(samples), 4):
        evaluator.process(data_samples=samples[start:start + 4])
    got = evaluator.evaluate(len(samples))
    want = gt_count_subset_ap(str(path), dets)
    expected = {f'coco/{k}': want['all'][k] for k in AP_FIELDS}
    for name in ('gt1-3', 'gt4-7', 'gt8-inf'):
        expected.update({f'coco/{name}/{k}': want[name][k] for k in AP_FIELDS})
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k
    assert got['coco/bbox_mAP'] > 0.1


def test_metric_rejects_bad_ranges_at_build(tmp_path):
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(random_coco(11, num_images=3)[0]))
    with pytest.raises(InputError, match='empty'):
        METRICS.build(dict(type='GTCountSubsetMetric', ann_file=str(path), ranges=[]))


def two_head_samples(dataset, seed=1):
    """Data samples whose predictions carry two heads (pred_instances = head 0), and each
    head's detections as COCO result dicts."""
    g = torch.Generator().manual_seed(seed)
    samples, dets = [], [[], []]
    for img in dataset['images']:
        own = [a for a in dataset['annotations'] if a['image_id'] == img['id']]
        xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in own)] +
                            [[10.0, 10.0, 90.0, 70.0]], dtype=torch.float32)
        labels = torch.tensor([a['category_id'] - 1 for a in own] + [0])
        heads = []
        for i in range(2):
            boxes = xyxy + torch.randn(xyxy.shape, generator=g) * 6 * (1 + i)
            boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)  # a model's boxes
            heads.append(dict(bboxes=boxes, scores=torch.rand(len(xyxy), generator=g),
                              labels=labels))
        samples.append(dict(img_id=img['id'], ori_shape=(img['height'], img['width']),
                            pred_instances=heads[0], pred_instances_h0=heads[0],
                            pred_instances_h1=heads[1]))
        for i, head in enumerate(heads):
            for (x1, y1, x2, y2), s, label in zip(head['bboxes'].tolist(),
                                                  head['scores'].tolist(), labels.tolist()):
                dets[i].append(dict(image_id=img['id'], category_id=label + 1,
                                    bbox=[x1, y1, x2 - x1, y2 - y1], score=s))
    return samples, dets


def evaluate_two_heads(tmp_path, dataset, reverse=False):
    """``GTCountSubsetMetric`` through mmengine's Evaluator on ``two_head_samples`` (processed
    in reverse image order with ``reverse``): the evaluator, its metrics, the GT file and each
    head's detections."""
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(dataset))
    evaluator = Evaluator([METRICS.build(dict(type='GTCountSubsetMetric', ann_file=str(path),
                                              prefix='val'))])
    evaluator.dataset_meta = dict(classes=[c['name'] for c in dataset['categories']])
    samples, dets = two_head_samples(dataset)
    evaluator.process(data_samples=samples[::-1] if reverse else samples)
    return evaluator, evaluator.evaluate(len(samples)), path, dets


def test_metric_per_head_ap(tmp_path):
    """Predictions carrying pred_instances_h{i} get h{i}/ keys equal to the function on them."""
    dataset, _ = random_coco(12, num_images=20)
    _, got, path, dets = evaluate_two_heads(tmp_path, dataset)
    for i in range(2):
        want = gt_count_subset_ap(str(path), dets[i])
        for name, stats in want.items():
            for k in AP_FIELDS:
                key = f'val/h{i}/{k}' if name == 'all' else f'val/h{i}/{name}/{k}'
                assert got[key] == pytest.approx(stats[k], abs=1e-12), key
    assert got['val/h0/bbox_mAP'] == got['val/bbox_mAP'] != got['val/h1/bbox_mAP']
