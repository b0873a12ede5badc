"""Intervals behind the claims: seeds × images from evaluation records, seeds alone else."""
import numpy as np
import pandas as pd
import pytest
from test_bootstrap import jittered
from test_crowdhuman import random_records
from test_gt_count_metric import coco_of, random_coco

from analysis import intervals
from analysis.intervals import RecordBootstrap
from prm_rga_eval.records import atomic_savez, crowd_record_arrays, record_arrays


class FakeRuns:
    """What RecordBootstrap reads of analysis.runs.Runs: artifact paths by run id."""

    def __init__(self, paths, cache_dir=None):
        self.paths, self.cache_dir = paths, cache_dir

    def artifact(self, run_id, path):
        return self.paths.get((run_id, path))


def write_record(path, dataset, dets):
    """An eval_records.npz of COCO result dicts, as EvalRecordHook would write it."""
    coco = coco_of(dataset)
    cat_ids = sorted(coco.getCatIds())
    img_ids = sorted(coco.getImgIds())
    preds = []
    for i in img_ids:
        own = [d for d in dets if d['image_id'] == i]
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in (d['bbox'] for d in own)],
                        np.float32).reshape(-1, 4)
        preds.append(dict(bboxes=xyxy, scores=np.array([d['score'] for d in own], np.float32),
                          labels=np.array([cat_ids.index(d['category_id']) for d in own])))
    atomic_savez(str(path), record_arrays(coco, cat_ids, img_ids, {'model': preds}))


@pytest.fixture(scope='module')
def arms(tmp_path_factory):
    """Three seeds of a good and of a poor detector on one val set, one on another val set."""
    tmp = tmp_path_factory.mktemp('records')
    dataset = random_coco(21, num_images=40, num_cats=2)[0]
    paths = {}
    for n, (arm, noise) in enumerate([('good', 0.03)] * 3 + [('poor', 0.2)] * 3):
        run = f'{arm}{n}'
        write_record(tmp / f'{run}.npz', dataset, jittered(dataset, n, noise=noise))
        paths[run, 'eval_records.npz'] = str(tmp / f'{run}.npz')
    other = random_coco(22, num_images=40, num_cats=2)[0]
    write_record(tmp / 'other.npz', other, jittered(other, 9))
    paths['other', 'eval_records.npz'] = str(tmp / 'other.npz')
    frame = lambda *ids: pd.DataFrame(dict(run_id=list(ids), seed=range(len(ids))))  # noqa: E731
    return dict(runs=FakeRuns(paths), good=frame('good0', 'good1', 'good2'),
                poor=frame('poor3', 'poor4', 'poor5'), frame=frame)


def test_clearly_better_detector_holds_over_seeds_and_images(arms):
    boot = RecordBootstrap(arms['runs'], resamples=200)
    iv = boot.compare(arms['good'], arms['poor'], 'val/bbox_mAP')
    assert iv.low > 0 and iv.images == 40
    assert iv.method.startswith('seeds × images: hierarchical bootstrap (3 vs 3 seeds)')
    iv.delta = 1.0
    assert intervals.verdict(iv, above=0.0) == intervals.HOLDS
    assert intervals.verdict(iv, below=0.0) == intervals.CONTRADICTED


def test_an_arm_against_itself_is_exactly_zero(arms):
    iv = RecordBootstrap(arms['runs'], resamples=100).compare(arms['good'], arms['good'],
                                                             'val/bbox_mAP_50')
    assert (iv.low, iv.high) == (0.0, 0.0)


def test_one_seed_per_arm_gives_an_images_only_interval_and_no_verdict(arms):
    """Two training runs differ by their seeds too: an interval over images alone, however
    clear, is shown but gives no verdict."""
    boot = RecordBootstrap(arms['runs'], resamples=100)
    iv = boot.compare(arms['frame']('good0'), arms['frame']('poor3'), 'val/gt1-3/bbox_mAP')
    assert iv.method.startswith('images only: paired bootstrap (one seed per arm')
    assert iv.low < iv.high
    iv.delta = 1.0
    assert iv.low > 0  # the good detector is clearly better on these images
    assert intervals.verdict(iv, above=0.0) == intervals.NOT_ENOUGH
    lopsided = boot.compare(arms['good'], arms['frame']('poor3'), 'val/gt1-3/bbox_mAP')
    assert 'one seed on a side: no verdict' in lopsided.method
    assert intervals.verdict(lopsided, above=0.0) == intervals.NOT_ENOUGH


def test_missing_records_and_other_val_sets_are_named(arms):
    boot = RecordBootstrap(arms['runs'], resamples=100)
    assert boot.compare(arms['frame']('good0', 'gone'), arms['poor'],
                        'val/bbox_mAP') == 'run gone: no eval_records.npz'
    assert 'different val sets' in boot.compare(arms['frame']('good0', 'other'), arms['poor'],
                                                 'val/bbox_mAP')
    assert boot.compare(arms['good'], arms['poor'], 'val/mMR') == \
        'run good0: no crowd_records.npz'
    assert boot.compare(arms['good'], arms['poor'], 'train/acc_pos/h0') == \
        'train/acc_pos/h0 has no per-image record'


def test_crowdhuman_mmr_gets_a_seeds_x_images_interval(arms, tmp_path):
    """Two seeds of a detector that finds the persons against two that miss them."""
    gt, _ = random_records(5, num_images=30)
    rng = np.random.default_rng(0)
    paths = {}
    for n, shift in enumerate([1.0, 1.0, 30.0, 30.0]):
        dets = [dict(ID=r['ID'], width=640, height=480, dtboxes=[
            dict(box=(np.array(b['fbox']) + rng.normal(0, shift, 4) * [1, 1, 0, 0]).tolist(),
                 score=float(rng.random())) for b in r['gtboxes']]) for r in gt]
        atomic_savez(str(tmp_path / f'crowd{n}.npz'), crowd_record_arrays(gt, dets))
        paths[f'crowd{n}', 'crowd_records.npz'] = str(tmp_path / f'crowd{n}.npz')
    boot = RecordBootstrap(FakeRuns(paths), resamples=100)
    iv = boot.compare(arms['frame']('crowd0', 'crowd1'), arms['frame']('crowd2', 'crowd3'),
                      'val/mMR')
    assert iv.high < 0 and iv.images == 30
    assert iv.method.startswith('seeds × images: hierarchical bootstrap (2 vs 2 seeds)')
    iv.delta = -1.0
    assert intervals.verdict(iv, below=0.0) == intervals.HOLDS


def test_resampled_ap_is_cached_beside_the_artifacts(arms, tmp_path, monkeypatch):
    runs = FakeRuns(arms['runs'].paths, cache_dir=str(tmp_path))
    first = RecordBootstrap(runs, resamples=100).compare(arms['good'], arms['poor'],
                                                          'val/gt8-inf/bbox_mAP')
    assert len(list(tmp_path.glob('*/bootstrap/*.npz'))) == 6
    monkeypatch.setattr(intervals, 'paired_bootstrap_ap', None)  # not computed again
    again = RecordBootstrap(runs, resamples=100).compare(arms['good'], arms['poor'],
                                                          'val/gt8-inf/bbox_mAP')
    assert (again.low, again.high) == (first.low, first.high)


def test_seed_intervals():
    one = intervals.over_seeds(pd.Series([1.0]), pd.Series([0.0, 0.1]))
    assert one.delta == pytest.approx(0.95) and not one.exists
    assert intervals.verdict(one, above=0.0) == intervals.NOT_ENOUGH
    iv = intervals.over_seeds(pd.Series([1.0, 1.2, 1.1]), pd.Series([0.0, 0.1]))
    assert iv.low < iv.delta < iv.high and iv.method == 'seeds: Welch t (3 vs 2 seeds)'
    band = intervals.Interval(0.0, -0.1, 0.1, 'x')
    assert intervals.verdict(band, above=-0.2, below=0.2) == intervals.HOLDS
    assert intervals.verdict(band, above=-0.05, below=0.05) == intervals.INCONCLUSIVE
