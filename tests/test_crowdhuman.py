"""CrowdHuman mMR / AP50 on hand-worked cases, the .odgt loader, the dataset and the metric."""
import json
import math
import random

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, METRICS
from mmengine.evaluator import Evaluator
from PIL import Image

from prm_rga.datasets.crowdhuman import CrowdHumanODGTDataset
from prm_rga.errors import InputError
from prm_rga.metrics import CrowdHumanMMRMetric, crowdhuman_mmr, load_odgt

FLOOR = 1e-10  # the log floor of the miss rates


def person(x, y, w, h, **extra):
    return dict(fbox=[x, y, w, h], tag='person', **({'extra': extra} if extra else {}))


def region(x, y, w, h):
    return dict(fbox=[x, y, w, h], tag='mask')


def det(x, y, w, h, score):
    return dict(box=[x, y, w, h], score=score, tag=1)


# Two images, three persons, an ignore region ('mask') and a person flagged ignore.
GT = [
    dict(ID='a', gtboxes=[person(0, 0, 10, 20), person(50, 0, 10, 20), region(100, 100, 50, 50)]),
    dict(ID='b', gtboxes=[person(0, 0, 10, 20), person(30, 30, 10, 10, ignore=1)]),
]
PERFECT = [
    dict(ID='a', dtboxes=[det(0, 0, 10, 20, 0.9), det(50, 0, 10, 20, 0.8)]),
    dict(ID='b', dtboxes=[det(0, 0, 10, 20, 0.7)]),
]


def with_dets(records, ID, *boxes):
    return [dict(r, dtboxes=r['dtboxes'] + list(boxes)) if r['ID'] == ID else r for r in records]


def test_perfect_detector():
    res = crowdhuman_mmr(GT, PERFECT)
    assert res['mMR'] == pytest.approx(FLOOR)  # every miss rate 0, floored
    # The benchmark's trapezoids start at the first ranked point (recall 1/3, precision 1),
    # so a perfect detector on n persons scores (n - 1) / n, not 1.
    assert res['AP50'] == pytest.approx(2 / 3)
    assert res['recall'] == 1.0


def test_one_missed_person():
    dets = [PERFECT[0], dict(ID='b', dtboxes=[])]
    res = crowdhuman_mmr(GT, dets)
    # no false positive: every FPPI reference reads the last rank, miss rate 1/3
    assert res['mMR'] == pytest.approx(1 / 3)
    assert res['AP50'] == pytest.approx(1 / 3)  # recall 1/3 -> 2/3 at precision 1
    assert res['recall'] == pytest.approx(2 / 3)


def test_false_positives_on_ignore_regions_are_dropped():
    dets = with_dets(PERFECT, 'a', det(110, 110, 30, 30, 0.95),  # inside the 'mask' region
                     det(90, 90, 40, 40, 0.85))  # IoA 30*30/40*40 = 0.5625 > 0.5
    dets = with_dets(dets, 'b', det(30, 30, 10, 10, 0.99))  # on the person flagged ignore
    assert crowdhuman_mmr(GT, dets) == crowdhuman_mmr(GT, PERFECT)


def test_false_positive_elsewhere():
    dets = with_dets(PERFECT, 'a', det(200, 0, 10, 20, 0.75))
    # ranked: TP .9, TP .8, FP .75, TP .7 -> recall 1/3 2/3 2/3 1, precision 1 1 2/3 3/4,
    # FPPI 0 0 .5 .5: references up to 0.3162 read rank 3 (miss 1/3), 0.5623 and 1 the last.
    res = crowdhuman_mmr(GT, dets)
    assert res['mMR'] == pytest.approx(math.exp((7 * math.log(1 / 3) + 2 * math.log(FLOOR)) / 9))
    assert res['AP50'] == pytest.approx(1 / 3 + (1 / 3) * (2 / 3 + 3 / 4) / 2)
    assert res['recall'] == 1.0


def test_low_iou_detection_is_a_false_positive_and_match_is_one_to_one():
    dets = with_dets(PERFECT, 'b', det(0, 5, 10, 20, 0.6),  # IoU 15/25 = 0.6, person taken
                     det(0, 10, 10, 20, 0.5))  # IoU 10/30 <= 0.5
    res = crowdhuman_mmr(GT, dets)
    assert res['recall'] == 1.0
    assert res['AP50'] == pytest.approx(2 / 3)  # the two FPs come after the last TP


def test_no_detections():
    assert crowdhuman_mmr(GT, []) == {'mMR': 1.0, 'AP50': 0.0, 'recall': 0.0}
    absorbed = [dict(ID='a', dtboxes=[det(100, 100, 50, 50, 0.9)])]
    assert crowdhuman_mmr(GT, absorbed) == {'mMR': 1.0, 'AP50': 0.0, 'recall': 0.0}


def random_records(seed, num_images=12):
    """Crowded images with ignore regions and detections whose scores tie often."""
    rng = np.random.default_rng(seed)
    gt, dets = [], []
    for n in range(num_images):
        boxes, dtboxes = [], []
        for _ in range(int(rng.integers(0, 12))):
            x, y, w, h = (rng.uniform(-20, 600), rng.uniform(-20, 400), *rng.uniform(10, 150, 2))
            boxes.append(person(x, y, w, h) if rng.random() < 0.85 else region(x, y, w, h))
            for _ in range(int(rng.integers(0, 3))):
                box = np.array([x, y, w, h]) + rng.normal(0, 8, 4)
                box[2:] = np.maximum(box[2:], 1)
                dtboxes.append(det(*box.tolist(), round(float(rng.random()), 1)))
        dtboxes += [det(*rng.uniform(0, 300, 2), *rng.uniform(10, 100, 2), 0.5)
                    for _ in range(int(rng.integers(0, 4)))]
        gt.append(dict(ID=f'img{n}', gtboxes=boxes, width=640, height=480))
        dets.append(dict(ID=f'img{n}', dtboxes=dtboxes))
    return gt, dets


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_stable_under_shuffled_detections(seed):
    gt, dets = random_records(seed)
    want = crowdhuman_mmr(gt, dets)
    assert 0 < want['AP50'] < 1 and 0 < want['mMR'] < 1
    rnd = random.Random(seed)
    for _ in range(3):
        shuffled = [dict(r, dtboxes=rnd.sample(r['dtboxes'], len(r['dtboxes']))) for r in dets]
        rnd.shuffle(shuffled)
        assert crowdhuman_mmr(gt, shuffled) == want


def test_equals_the_benchmark_code_as_ported_by_mmdet():
    """mmdet's CrowdHumanMetric carries CrowdDet's APMRToolkits; with distinct scores (its
    tie order is input order) and no zero miss rate (it has no log floor) both must agree."""
    from mmdet.evaluation.metrics import crowdhuman_metric as ported
    ref = ported.CrowdHumanMetric.__new__(ported.CrowdHumanMetric)
    ref.mr_ref, ref.compare_matching_method, ref.iou_thres = 'CALTECH_-2', None, 0.5
    for seed in range(3):
        gt, dets = random_records(seed, num_images=30)
        gt, dets = zip(*[(g, d) for g, d in zip(gt, dets) if g['gtboxes']])  # it needs a box
        rng = np.random.default_rng(seed)
        for box in (b for d in dets for b in d['dtboxes']):
            box['score'] = float(rng.random())
        images = {}
        for g, d in zip(gt, dets):
            images[g['ID']] = image = ported.Image(0)
            image.load(dict(g, gtboxes=[dict(b, hbox=b['fbox'], vbox=b['fbox'])
                                        for b in g['gtboxes']]),
                       'box', None, ported.PERSON_CLASSES, True)
            image.load(d, 'box', None, ported.PERSON_CLASSES, False)
            if not d['dtboxes']:
                image.dt_boxes = np.empty([0, 5])
            image.clip_all_boader()
        ranked = ref.compare(images)
        num_persons = sum(i.gt_num - i.ign_num for i in images.values())
        res = crowdhuman_mmr(gt, dets)
        assert res['AP50'] == pytest.approx(ref.eval_ap(ranked, num_persons, len(images)), abs=1e-9)
        assert res['mMR'] == pytest.approx(ref.eval_mr(ranked, num_persons, len(images)), abs=1e-9)


def test_clipping_with_image_size():
    gt = [dict(ID='x', gtboxes=[person(-50, 0, 100, 100)])]
    dets = [dict(ID='x', dtboxes=[det(0, 0, 50, 100, 0.9)])]  # IoU 0.5 unclipped: no match
    assert crowdhuman_mmr(gt, dets)['recall'] == 0.0
    assert crowdhuman_mmr([dict(gt[0], width=100, height=100)], dets)['recall'] == 1.0
    # the size may also come with the detection record, as the benchmark's results carry it
    assert crowdhuman_mmr(gt, [dict(dets[0], width=100, height=100)])['recall'] == 1.0
    # a detection hanging over the right edge is clipped to it (x2 to w) and matches
    gt = [dict(ID='x', gtboxes=[person(60, 0, 40, 100)], width=100, height=100)]
    assert crowdhuman_mmr(gt, [dict(ID='x', dtboxes=[det(60, 0, 90, 100, 0.9)])])['recall'] == 1


def test_unknown_detection_id():
    with pytest.raises(InputError, match="'zzz'"):
        crowdhuman_mmr(GT, [dict(ID='zzz', dtboxes=[])])


def test_detection_with_negative_width_is_named():
    dets = [dict(ID='a', dtboxes=[det(0, 0, 10, 20, 0.9)]),
            dict(ID='b', dtboxes=[det(0, 0, 10, 20, 0.9), det(5, 5, -3, 4, 0.5)])]
    with pytest.raises(InputError, match=r"detection record 1 \(ID 'b'\): dtboxes\[1\]\.box "
                                         'has a negative width'):
        crowdhuman_mmr(GT, dets)


def write_odgt(path, records):
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))
    return str(path)


def test_load_odgt(tmp_path):
    path = write_odgt(tmp_path / 'gt.odgt', GT)
    assert load_odgt(path) == GT
    path = tmp_path / 'bad.odgt'
    path.write_text(json.dumps(GT[0]) + '\n{"ID": "b", "gtboxes": [\n')
    with pytest.raises(InputError, match=r'bad\.odgt, line 2: not valid JSON'):
        load_odgt(str(path))
    bad = dict(ID='c', gtboxes=[person(0, 0, 5, 5), person(0, 0, -5, 10)])
    path = write_odgt(tmp_path / 'neg.odgt', GT + [bad])
    with pytest.raises(InputError,
                       match=r'neg\.odgt, line 3: gtboxes\[1\]\.fbox has a negative width'):
        load_odgt(path)
    path = write_odgt(tmp_path / 'notag.odgt', [dict(ID='c', gtboxes=[dict(fbox=[0, 0, 1, 1])])])
    with pytest.raises(InputError, match=r'line 1: gtboxes\[0\]\.tag'):
        load_odgt(path)
    with pytest.raises(InputError, match='missing.odgt'):
        load_odgt(str(tmp_path / 'missing.odgt'))


def test_dataset(tmp_path):
    (tmp_path / 'img').mkdir()
    Image.new('RGB', (80, 60)).save(tmp_path / 'img' / 'a.png')
    Image.new('RGB', (80, 60)).save(tmp_path / 'img' / 'b.png')
    records = [dict(ID='a', gtboxes=[person(-10, 5, 30, 70), region(40, 10, 20, 20),
                                     person(100, 0, 10, 10)]),
               dict(ID='b', gtboxes=[person(1, 2, 3, 4, ignore=1)], width=80, height=60)]
    ann = write_odgt(tmp_path / 'ann.odgt', records)
    ds = DATASETS.build(dict(type='CrowdHumanODGTDataset', ann_file=ann, img_ext='png',
                             data_prefix=dict(img=str(tmp_path / 'img')), pipeline=[]))
    assert isinstance(ds, CrowdHumanODGTDataset) and len(ds) == 2
    a = ds.get_data_info(0)
    assert a['img_path'].endswith('a.png') and (a['width'], a['height']) == (80, 60)
    assert a['instances'] == [dict(bbox=[0, 5, 20, 60], bbox_label=0, ignore_flag=0),
                              dict(bbox=[40, 10, 60, 30], bbox_label=0, ignore_flag=1)]
    assert ds.get_data_info(1)['instances'][0]['ignore_flag'] == 1
    only_persons = DATASETS.build(dict(type='CrowdHumanODGTDataset', ann_file=ann, img_ext='png',
                                       data_prefix=dict(img=str(tmp_path / 'img')),
                                       filter_cfg=dict(filter_empty_gt=True), pipeline=[]))
    assert len(only_persons) == 1
    with pytest.raises(InputError, match='nope.odgt'):
        CrowdHumanODGTDataset(ann_file=str(tmp_path / 'nope.odgt'),
                              data_prefix=dict(img=str(tmp_path / 'img')))
    with pytest.raises(InputError, match='noimg'):
        CrowdHumanODGTDataset(ann_file=ann, data_prefix=dict(img=str(tmp_path / 'noimg')))


def test_mmdet_crowdhuman_registrations_left_as_mmdet_has_them():
    """`import prm_rga` (done by conftest) must not change what mmdet's CrowdDet configs build."""
    import mmdet.datasets
    import mmdet.evaluation
    assert DATASETS.get('CrowdHumanDataset') is mmdet.datasets.CrowdHumanDataset
    assert METRICS.get('CrowdHumanMetric') is mmdet.evaluation.CrowdHumanMetric
    assert DATASETS.get('CrowdHumanODGTDataset') is CrowdHumanODGTDataset
    assert METRICS.get('CrowdHumanMMRMetric') is CrowdHumanMMRMetric


def test_metric_through_evaluator_equals_function(tmp_path):
    gt, _ = random_records(3)
    for r in gt:  # sizes come from the data samples, as in CrowdHuman's own files
        del r['width'], r['height']
    ann = write_odgt(tmp_path / 'val.odgt', gt)
    metric = METRICS.build(dict(type='CrowdHumanMMRMetric', ann_file=ann))
    assert isinstance(metric, CrowdHumanMMRMetric)
    evaluator = Evaluator([metric])
    evaluator.dataset_meta = dict(classes=('person', ))
    samples, dets = data_samples(gt)
    for start in range(0, len(samples), 5):
        evaluator.process(data_samples=samples[start:start + 5])
    got = evaluator.evaluate(len(samples))
    want = crowdhuman_mmr(gt, dets)
    assert got == {f'crowd_human/{k}': v for k, v in want.items()}
    assert 0 < want['AP50'] < 1


def data_samples(gt):
    """A detector's data samples on the gt images (jittered persons and regions, one box of
    another class each), and the detection records the metric should make of them."""
    g = torch.Generator().manual_seed(0)
    samples, dets = [], []
    for r in gt:
        boxes = [b['fbox'] for b in r['gtboxes']] + [[5, 5, 40, 80]]
        xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in boxes], dtype=torch.float32)
        xyxy = xyxy + torch.randn(xyxy.shape, generator=g) * 2
        scores = torch.rand(len(xyxy), generator=g)
        labels = torch.zeros(len(xyxy), dtype=torch.long)
        labels[-1] = 1  # another class: not evaluated
        samples.append(dict(img_id=r['ID'], ori_shape=(480, 640),
                            pred_instances=dict(bboxes=xyxy, scores=scores, labels=labels)))
        dets.append(dict(ID=r['ID'], width=640, height=480, dtboxes=[
            det(x1, y1, x2 - x1, y2 - y1, s)
            for (x1, y1, x2, y2), s in zip(xyxy[:-1].tolist(), scores[:-1].tolist())]))
    return samples, dets
