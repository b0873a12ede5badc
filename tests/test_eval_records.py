"""Evaluation records: AP recomputed from the artifact equals the metric that logged it."""
import logging
from types import SimpleNamespace

import numpy as np
import pytest
from mmdet.registry import HOOKS
from test_gt_count_metric import evaluate_two_heads, random_coco

from prm_rga.errors import InputError
from prm_rga.eval_records import FILE, load_record, atomic_savez
from prm_rga.metrics import paired_bootstrap_ap


def evaluated_runner(tmp_path, dataset):
    evaluator, metrics, _, _ = evaluate_two_heads(tmp_path, dataset,
                                                  reverse=True)  # records sort the images
    runner = SimpleNamespace(work_dir=str(tmp_path / 'work'), val_evaluator=evaluator,
                             logger=logging.getLogger('test'))
    return runner, metrics


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
            if 'num_images' not in key:
                assert value[0] == pytest.approx(metrics[prefix + key], abs=1e-12), (source, key)
    assert metrics['val/h0/bbox_mAP'] != metrics['val/h1/bbox_mAP']


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
    dataset, _ = random_coco(12, num_images=5)
    runner, _ = evaluated_runner(tmp_path, dataset)
    HOOKS.build(dict(type='EvalRecordHook')).after_val_epoch(runner)
    path = f'{runner.work_dir}/artifacts/{FILE}'
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    with pytest.raises(InputError, match='nope.npz: no such evaluation record'):
        load_record(str(tmp_path / 'nope.npz'))
    atomic_savez(str(tmp_path / 'short.npz'), {k: v for k, v in arrays.items() if k != 'score'})
    with pytest.raises(InputError, match='short.npz: evaluation record without field\\(s\\) '
                                         'score'):
        load_record(str(tmp_path / 'short.npz'))
    atomic_savez(str(tmp_path / 'edited.npz'), dict(arrays, gt_area=arrays['gt_area'] + 1))
    with pytest.raises(InputError, match='gt_sha256 does not match'):
        load_record(str(tmp_path / 'edited.npz'))


def test_tracked_trials_get_the_hook_once():
    from mmengine.config import Config

    from experiments.launcher import with_eval_records
    cfg = Config(dict(custom_hooks=[dict(type='FiniteLossHook')]))
    with_eval_records(with_eval_records(cfg))
    assert [h['type'] for h in cfg.custom_hooks] == ['FiniteLossHook', 'EvalRecordHook']
    assert with_eval_records(Config({})).custom_hooks == [dict(type='EvalRecordHook')]
