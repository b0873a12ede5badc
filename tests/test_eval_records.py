"""Evaluation records: AP (CrowdHuman: mMR) recomputed from the artifact equals the metric that
logged it."""
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import HOOKS, METRICS
from mmengine.evaluator import Evaluator
from test_crowdhuman import data_samples, person, random_records, write_odgt
from test_gt_count_metric import evaluate_two_heads, random_coco

from prm_rga.errors import InputError
from prm_rga_eval.records import CROWD_FILE, FILE, atomic_savez, load_crowd_record, load_record
from prm_rga.metrics import crowdhuman_mmr, paired_bootstrap_ap, paired_bootstrap_mmr


def evaluated_runner(tmp_path, dataset):
    evaluator, metrics, _, _ = evaluate_two_heads(tmp_path, dataset,
                                                  reverse=True)  # records sort the images
    runner = SimpleNamespace(work_dir=str(tmp_path / 'work'), val_evaluator=evaluator,
                             logger=logging.getLogger('test'))
    return runner, metrics


def written_record(tmp_path, seed, num_images):
    """The record the hook writes after a two-head evaluation: (runner, path, its arrays)."""
    runner, _ = evaluated_runner(tmp_path, random_coco(seed, num_images=num_images)[0])
    HOOKS.build(dict(type='EvalRecordHook')).after_val_epoch(runner)
    path = f'{runner.work_dir}/artifacts/{FILE}'
    with np.load(path) as f:
        return runner, path, {k: f[k] for k in f.files}


def test_record_recomputes_the_logged_metrics(tmp_path):
    dataset, _ = random_coco(12, num_images=20)
    runner, metrics = evaluated_runner(tmp_path, dataset)
    HOOKS.build(dict(type='EvalRecordHook')).after_val_epoch(runner, metrics)
    coco, dets, sha = load_record(tmp_path / 'work' / 'artifacts' / FILE)
    assert list(dets) == ['model', 'h0', 'h1'] and len(sha) == 64
    assert sorted(coco.getImgIds()) == sorted(im['id'] for im in dataset['images'])
    n = len(dataset['images'])
    got = paired_bootstrap_ap(coco, dets, np.arange(n)[None], ((1, 3), (4, 7), (8, None)))
    for source, prefix in (('model', 'val/'), ('h0', 'val/h0/'), ('h1', 'val/h1/')):
        for key, value in got[source].items():
            if 'num_images' not in key:  # boxes within 0.005 px: no IoU threshold crossed
                assert value[0] == pytest.approx(metrics[prefix + key], abs=1e-4), (source, key)
    assert metrics['val/h0/bbox_mAP'] != metrics['val/h1/bbox_mAP']


def test_boxes_come_back_within_half_a_step_and_scores_exactly(tmp_path):
    runner, path, arrays = written_record(tmp_path, 13, 20)
    assert arrays['bbox'].dtype == np.uint16 and arrays['label'].dtype == np.uint8
    steps = dict(zip(arrays['image_id'].tolist(), arrays['bbox_step']))
    _, dets, _ = load_record(path)
    record = runner.val_evaluator.metrics[0].last_record
    by_image = dict(zip(record['img_ids'], range(len(record['img_ids']))))
    for source, preds in record['sources'].items():
        got = dets[source]  # images ascending, each as predicted
        want = [(i, p) for i in sorted(by_image) for p in [preds[by_image[i]]]]
        boxes = np.concatenate([p['bboxes'] for _, p in want]).astype(np.float64)
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in (d['bbox'] for d in got)])
        half = np.repeat([steps[i] / 2 for i, _ in want], [len(p['scores']) for _, p in want])
        assert (np.abs(xyxy - boxes) <= half[:, None] * (1 + 1e-9)).all()
        assert 0 < half.max() < 0.01  # boxes of a 640 x 480 image
        assert [d['score'] for d in got] == np.concatenate(
            [p['scores'] for _, p in want]).tolist()


def test_records_of_before_still_load(tmp_path):
    """float32 boxes as predicted, int16 labels, no bbox_origin / bbox_step."""
    _, path, arrays = written_record(tmp_path, 12, 8)
    del arrays['bbox_origin'], arrays['bbox_step']
    _, now, _ = load_record(path)
    flat_now = [d for source in now for d in now[source]]
    old = np.array([[x, y, x + w, y + h] for x, y, w, h in (d['bbox'] for d in flat_now)],
                   dtype=np.float32)
    atomic_savez(str(tmp_path / 'old.npz'), dict(arrays, bbox=old,
                                                 label=arrays['label'].astype(np.int16)))
    _, before, _ = load_record(str(tmp_path / 'old.npz'))
    assert list(before) == list(now)
    flat = [d for source in before for d in before[source]]
    for key in ('image_id', 'category_id', 'score'):
        assert [d[key] for d in flat] == [d[key] for d in flat_now]
    assert [d['bbox'] for d in flat] == [[x1, y1, x2 - x1, y2 - y1]
                                         for x1, y1, x2, y2 in old.tolist()]


def test_crowd_record_recomputes_the_logged_mmr(tmp_path):
    gt, _ = random_records(4, num_images=20)
    gt.append(dict(ID='edge', gtboxes=[person(-100, 10, 150, 100)]))
    for r in gt[1:]:  # sizes from the data samples, as in CrowdHuman's own files
        r.pop('width', None), r.pop('height', None)
    metric = METRICS.build(dict(type='CrowdHumanMMRMetric', prefix='val',
                                ann_file=write_odgt(tmp_path / 'val.odgt', gt)))
    evaluator = Evaluator([metric])
    evaluator.dataset_meta = dict(classes=('person', ))
    samples, _ = data_samples(gt)
    # found only where the person is clipped to the image (IoU 1, else 1/3): sizes are kept
    samples[-1]['pred_instances']['bboxes'][0] = torch.tensor([0, 10, 50, 110])
    evaluator.process(data_samples=samples)
    metrics = evaluator.evaluate(len(samples))
    runner = SimpleNamespace(work_dir=str(tmp_path / 'work'), val_evaluator=evaluator,
                             logger=logging.getLogger('test'))
    HOOKS.build(dict(type='EvalRecordHook')).after_val_epoch(runner, metrics)
    gts, records, sha = load_crowd_record(tmp_path / 'work' / 'artifacts' / CROWD_FILE)
    assert len(sha) == 64 and [r['ID'] for r in gts] == [r['ID'] for r in gt]
    logged = {k: metrics[f'val/{k}'] for k in ('mMR', 'AP50', 'recall')}
    assert crowdhuman_mmr(gts, records) == logged
    got = paired_bootstrap_mmr(gts, {'model': records}, np.arange(len(gt))[None])['model']
    assert {k: got[k][0] for k in logged} == logged
    assert 0 < metrics['val/mMR'] < 1


def test_records_of_another_val_set_differ_in_fingerprint(tmp_path):
    one = evaluated_runner(tmp_path / 'a', random_coco(12, num_images=20)[0])[0]
    other_set = random_coco(12, num_images=20)[0]
    other_set['annotations'][0]['bbox'][0] += 1
    two = evaluated_runner(tmp_path / 'b', other_set)[0]
    hook = HOOKS.build(dict(type='EvalRecordHook'))
    shas = []
    for runner in (one, two):
        hook.after_val_epoch(runner)
        shas.append(load_record(f'{runner.work_dir}/artifacts/{FILE}')[2])
    assert shas[0] != shas[1]


def test_bad_records_are_named(tmp_path):
    _, _, arrays = written_record(tmp_path, 12, 5)
    with pytest.raises(InputError, match='nope.npz: no such evaluation record'):
        load_record(str(tmp_path / 'nope.npz'))
    atomic_savez(str(tmp_path / 'short.npz'), {k: v for k, v in arrays.items() if k != 'score'})
    with pytest.raises(InputError, match='short.npz: evaluation record without field\\(s\\) '
                                         'score'):
        load_record(str(tmp_path / 'short.npz'))
    atomic_savez(str(tmp_path / 'edited.npz'), dict(arrays, gt_area=arrays['gt_area'] + 1))
    with pytest.raises(InputError, match='gt_sha256 does not match'):
        load_record(str(tmp_path / 'edited.npz'))
    atomic_savez(str(tmp_path / 'stepless.npz'),
                 {k: v for k, v in arrays.items() if k != 'bbox_step'})
    with pytest.raises(InputError, match='stepless.npz: uint16 bbox without a value per image '
                                         'in bbox_step'):
        load_record(str(tmp_path / 'stepless.npz'))


def test_tracked_trials_get_the_hook_once():
    from mmengine.config import Config

    from experiments.launcher import with_eval_records
    cfg = Config(dict(custom_hooks=[dict(type='FiniteLossHook')]))
    with_eval_records(with_eval_records(cfg))
    assert [h['type'] for h in cfg.custom_hooks] == ['FiniteLossHook', 'EvalRecordHook']
    assert with_eval_records(Config({})).custom_hooks == [dict(type='EvalRecordHook')]
