"""Paired bootstrap of COCO AP: every resample equals pycocotools on the duplicated-image set."""
import copy
import json

import numpy as np
import pytest
from test_crowdhuman import random_records
from test_gt_count_metric import AP_FIELDS, coco_of, fresh_stats, random_coco

from prm_rga.datasets import make_synth
from prm_rga.errors import InputError
from prm_rga.metrics import (crowdhuman_mmr, draw_resamples, gt_count_subset_ap,
                             paired_bootstrap_ap, paired_bootstrap_mmr, percentile_interval)
from prm_rga_eval.gt_count import evaluated
from prm_rga_eval.matching import coco_matches

RANGES = ((1, 3), (4, 7), (8, None))


def duplicated(dataset, dets, row):
    """The dataset of the drawn images, each copy under a new image id (copies in the order of
    their originals), with its GT (new annotation ids) and its detections."""
    ids = sorted(im['id'] for im in dataset['images'])
    images = {im['id']: im for im in dataset['images']}
    anns, new_dets, new_images = [], [], []
    for new_id, pos in enumerate(sorted(row), 1):
        old = ids[pos]
        new_images.append(dict(images[old], id=new_id))
        anns += [dict(a, image_id=new_id) for a in dataset['annotations']
                 if a['image_id'] == old]
        new_dets += [dict(d, image_id=new_id) for d in dets if d['image_id'] == old]
    anns = [dict(a, id=n) for n, a in enumerate(anns, 1)]
    return dict(dataset, images=new_images, annotations=anns), new_dets


def jittered(dataset, seed, noise=0.1, num_false=4, score_digits=None):
    """Detections of a noisy detector: each non-crowd GT found with probability 0.8 with its box
    jittered by ``noise`` of its size, plus false positives."""
    rng = np.random.default_rng(seed)
    cats = [c['id'] for c in dataset['categories']]
    dets = []
    for ann in dataset['annotations']:
        if rng.random() < 0.8:
            x, y, w, h = ann['bbox']
            box = (np.array([x, y, w, h]) + rng.normal(0, noise, 4) * [w, h, w, h]).tolist()
            dets.append(dict(image_id=ann['image_id'], category_id=ann['category_id'],
                             bbox=box, score=float(rng.random())))
    for im in dataset['images']:
        for _ in range(int(rng.integers(0, num_false + 1))):
            w, h = rng.uniform(4, 60, 2)
            dets.append(dict(image_id=im['id'], category_id=int(rng.choice(cats)),
                             bbox=[*rng.uniform(0, 60, 2).tolist(), w, h],
                             score=float(rng.random())))
    if score_digits is not None:
        for d in dets:
            d['score'] = round(d['score'], score_digits)
    return dets


def assert_stats(got, row, stats, prefix=''):
    for k in AP_FIELDS:
        assert got[prefix + k][row] == pytest.approx(stats[k], abs=1e-12), (prefix, k)


def grid_coco(seed, num_images=30):
    """Boxes on a coarse grid, some GT given twice (the copy in another area range) and some
    crowd, one-digit scores: equal IoUs (the last GT wins), crowd GT taken again and again, GT
    outside an area range taken, ties."""
    rng = np.random.default_rng(seed)
    images = [dict(id=i, width=200, height=200) for i in range(1, num_images + 1)]
    anns, dets = [], []
    for im in images:
        for _ in range(int(rng.integers(0, 7))):
            x, y = rng.integers(0, 8, 2) * 10
            w, h = rng.choice([10, 20, 30, 40, 100, 150], 2)
            ann = dict(image_id=im['id'], category_id=int(rng.integers(1, 3)),
                       bbox=[int(x), int(y), int(w), int(h)], area=float(w * h),
                       iscrowd=int(rng.random() < 0.15))
            anns.append(ann)
            if rng.random() < 0.3:  # the same box again, of another area range
                anns.append(dict(ann, area=ann['area'] * 16))
        for _ in range(int(rng.integers(0, 12))):
            x, y = rng.integers(0, 8, 2) * 10
            w, h = rng.choice([10, 20, 30, 40, 100, 150], 2)
            dets.append(dict(image_id=im['id'], category_id=int(rng.integers(1, 3)),
                             bbox=[int(x), int(y), int(w), int(h)],
                             score=round(float(rng.random()), 1)))
    # a detection as close to two GT (the first takes the last), then one on the last GT
    images.append(dict(id=num_images + 1, width=200, height=200))
    for x in (40, 60):
        anns.append(dict(image_id=num_images + 1, category_id=1, bbox=[x, 0, 100, 100],
                         area=1e4, iscrowd=0))
    dets += [dict(image_id=num_images + 1, category_id=1, bbox=[50, 0, 100, 100], score=0.95),
             dict(image_id=num_images + 1, category_id=1, bbox=[60, 0, 100, 100], score=0.9)]
    anns = [dict(a, id=n) for n, a in enumerate(anns, 1)]
    cats = [dict(id=c, name=f'c{c}') for c in (1, 2)]
    return dict(images=images, annotations=anns, categories=cats), dets


@pytest.mark.parametrize('make,seed', [(random_coco, 0), (random_coco, 1), (grid_coco, 0),
                                       (grid_coco, 1), (grid_coco, 2)])
def test_matches_are_pycocotools_flag_for_flag(make, seed):
    dataset, dets = make(seed)
    gt = coco_of(dataset)
    ev, got = evaluated(gt, dets), coco_matches(gt, dets)
    p, num_img = ev._paramsEval, len(dataset['images'])
    num_a = len(p.areaRng)
    assert got.tp.any() and got.fp.any()
    for k in range(len(p.catIds)):
        span = slice(got.cat_start[k], got.cat_start[k + 1])
        for a in range(num_a):
            evs = ev.evalImgs[(k * num_a + a) * num_img:(k * num_a + a + 1) * num_img]
            evs = [e for e in evs if e is not None]
            scores = np.concatenate([e['dtScores'] for e in evs])
            order = np.argsort(-scores, kind='mergesort')
            dtm = np.concatenate([e['dtMatches'] for e in evs], axis=1)[:, order] != 0
            ign = np.concatenate([e['dtIgnore'] for e in evs], axis=1)[:, order] != 0
            assert np.array_equal(got.score[span], scores[order])
            assert np.array_equal(got.tp[a, :, span], dtm & ~ign), (k, a)
            assert np.array_equal(got.fp[a, :, span], ~dtm & ~ign), (k, a)
            npig = [np.count_nonzero(np.asarray(e['gtIgnore']) == 0) for e in evs]
            assert got.npig[k, a].sum() == sum(npig)


@pytest.fixture(scope='module')
def synth_val(tmp_path_factory):
    root = make_synth(tmp_path_factory.mktemp('synth') / 'set', num_train=1, num_val=40)
    return json.loads((root / 'annotations' / 'instances_val.json').read_text())


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_identity_is_pycocotools_with_crowd_boxes_and_images_without_gt(seed):
    dataset, dets = random_coco(seed)
    assert any(a['iscrowd'] for a in dataset['annotations'])
    assert {im['id'] for im in dataset['images']} - {a['image_id'] for a in dataset['annotations']}
    gt = coco_of(dataset)
    n = len(dataset['images'])
    got = paired_bootstrap_ap(gt, {'m': dets}, np.arange(n)[None], RANGES)['m']
    assert_stats(got, 0, fresh_stats(gt, dets))
    subsets = gt_count_subset_ap(gt, dets, RANGES)
    for name in ('gt1-3', 'gt4-7', 'gt8-inf'):
        assert_stats(got, 0, subsets[name], f'{name}/')
        assert got[f'{name}/num_images'][0] == subsets[name]['num_images']
    assert got['num_images'][0] == n


def test_identity_is_pycocotools_on_the_synthetic_val_set(synth_val):
    dets = jittered(synth_val, 0, noise=0.05)
    gt = coco_of(synth_val)
    got = paired_bootstrap_ap(gt, {'m': dets}, np.arange(len(synth_val['images']))[None])['m']
    stats = fresh_stats(gt, dets)
    assert stats['bbox_mAP'] > 0.2
    assert_stats(got, 0, stats)


@pytest.mark.parametrize('seed,num_resamples', [(0, 100), (1, 100), (2, 130)])
def test_resamples_are_cocoeval_on_the_duplicated_images(seed, num_resamples):
    dataset, dets = random_coco(seed, num_images=40)
    rows = draw_resamples(len(dataset['images']), num_resamples, seed)
    assert rows.shape == (num_resamples, 40)
    got = paired_bootstrap_ap(coco_of(dataset), {'m': dets}, rows, RANGES)['m']
    assert len(got['bbox_mAP']) == num_resamples
    for r in (0, num_resamples // 2, num_resamples - 1):
        dup, dup_dets = duplicated(dataset, dets, rows[r])
        assert_stats(got, r, fresh_stats(coco_of(dup), dup_dets))
        subsets = gt_count_subset_ap(coco_of(dup), dup_dets, RANGES)
        for name in ('gt1-3', 'gt4-7', 'gt8-inf'):
            assert_stats(got, r, subsets[name], f'{name}/')
    # a row's values do not depend on the other rows
    alone = paired_bootstrap_ap(coco_of(dataset), {'m': dets}, rows[[7]])['m']
    assert alone['bbox_mAP'][0] == pytest.approx(got['bbox_mAP'][7], abs=1e-15)


def test_fields_asked_for_are_those_of_the_full_resampling():
    """Given fields, the bootstrap computes those alone (and the image counts of their sets of
    images), with the values of the call that computes everything."""
    dataset, dets = random_coco(3, num_images=40)
    gt, rows = coco_of(dataset), draw_resamples(40, 100, 3)
    full = paired_bootstrap_ap(gt, {'m': dets}, rows, RANGES)['m']
    for fields in (['bbox_mAP_75'], ['gt8-inf/bbox_mAP', 'bbox_mAP_s'], ['gt1-3/bbox_mAP_m']):
        got = paired_bootstrap_ap(gt, {'m': dets}, rows, RANGES, fields)['m']
        counts = {f[:f.rfind('/') + 1] + 'num_images' for f in fields}
        assert set(got) == set(fields) | counts
        for key, values in got.items():
            np.testing.assert_allclose(values, full[key], rtol=1e-12, err_msg=key)
    with pytest.raises(InputError, match='no such field gt1-3/bbox_mAP'):
        paired_bootstrap_ap(gt, {'m': dets}, rows, None, ['gt1-3/bbox_mAP'])


def test_equal_scores_of_tps_and_fps_in_a_drawn_image():
    """Ties inside one image interleave across its copies (TP, FP, TP, FP): exact as well."""
    dataset = dict(images=[dict(id=i, width=100, height=100) for i in (1, 2, 3)],
                   categories=[dict(id=1, name='a')],
                   annotations=[dict(id=n + 1, image_id=i, category_id=1, bbox=b, area=b[2] * b[3],
                                     iscrowd=0)
                                for n, (i, b) in enumerate([(1, [10, 10, 30, 30]),
                                                            (1, [50, 50, 30, 30]),
                                                            (2, [5, 5, 20, 20]),
                                                            (3, [0, 0, 40, 40])])])
    dets = [dict(image_id=1, category_id=1, bbox=[10, 10, 30, 30], score=0.7),
            dict(image_id=1, category_id=1, bbox=[70, 0, 10, 10], score=0.7),   # tie, FP
            dict(image_id=1, category_id=1, bbox=[50, 50, 30, 30], score=0.7),  # tie, TP
            dict(image_id=2, category_id=1, bbox=[60, 60, 20, 20], score=0.9),  # FP
            dict(image_id=2, category_id=1, bbox=[5, 5, 20, 21], score=0.3),
            dict(image_id=3, category_id=1, bbox=[0, 0, 40, 40], score=0.7)]    # tie, other image
    rows = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 2], [2, 0, 0]])
    got = paired_bootstrap_ap(coco_of(dataset), {'m': dets}, rows)['m']
    for r, row in enumerate(rows):
        dup, dup_dets = duplicated(dataset, dets, row)
        assert_stats(got, r, fresh_stats(coco_of(dup), dup_dets))


def test_a_model_against_itself_differs_by_exactly_zero():
    dataset, dets = random_coco(3)
    rows = draw_resamples(len(dataset['images']), 200, 5)
    got = paired_bootstrap_ap(coco_of(dataset), {'a': dets, 'b': copy.deepcopy(dets)}, rows,
                              RANGES)
    for key, values in got['a'].items():
        assert np.array_equal(values, got['b'][key]), key
    delta = got['a']['bbox_mAP'] - got['b']['bbox_mAP']
    assert percentile_interval(delta) == (0.0, 0.0)
    assert np.ptp(got['a']['bbox_mAP']) > 0.01  # the resamples do vary


def test_intervals_of_equal_detectors_cover_zero_at_about_95_percent():
    """200 pairs of detectors with the same noise: about 95% of the intervals hold 0."""
    rng = np.random.default_rng(7)
    boxes = [(i, [*rng.uniform(0, 200, 2), *rng.uniform(10, 100, 2)])
             for i in range(40) for _ in range(int(rng.integers(0, 5)))]
    dataset = dict(images=[dict(id=i, width=300, height=300) for i in range(40)],
                   categories=[dict(id=1, name='a')],
                   annotations=[dict(id=n, image_id=i, category_id=1, bbox=b, area=b[2] * b[3],
                                     iscrowd=0) for n, (i, b) in enumerate(boxes, 1)])
    gt = coco_of(dataset)
    rows = draw_resamples(len(dataset['images']), 200, 0)
    covered = 0
    for pair in range(200):
        got = paired_bootstrap_ap(gt, {'a': jittered(dataset, 2 * pair + 1, noise=0.15),
                                       'b': jittered(dataset, 2 * pair + 2, noise=0.15)}, rows)
        low, high = percentile_interval(got['a']['bbox_mAP'] - got['b']['bbox_mAP'])
        covered += low <= 0 <= high
    assert 180 <= covered <= 198, covered


def test_clearly_better_boxes_hold(synth_val):
    gt = coco_of(synth_val)
    rows = draw_resamples(len(synth_val['images']), 500, 1)
    got = paired_bootstrap_ap(gt, {'good': jittered(synth_val, 1, noise=0.03),
                                   'poor': jittered(synth_val, 2, noise=0.15)}, rows)
    low, _ = percentile_interval(got['good']['bbox_mAP'] - got['poor']['bbox_mAP'])
    assert low > 0


@pytest.mark.parametrize('seed', [0, 1])
def test_crowdhuman_resamples_are_the_benchmark_on_the_duplicated_images(seed):
    gt, dets = random_records(seed, num_images=15)  # scores tie often, within images too
    rows = np.concatenate([np.arange(15)[None], draw_resamples(15, 100, seed)[:4]])
    got = paired_bootstrap_mmr(gt, {'a': dets, 'b': dets[::-1]}, rows)
    assert all(np.array_equal(got['a'][k], got['b'][k]) for k in got['a'])  # record order
    for r, row in enumerate(rows):
        by_id = {d['ID']: d for d in dets}
        dup_gt = [dict(gt[p], ID=f'{n}') for n, p in enumerate(sorted(row))]
        dup_dets = [dict(by_id[gt[p]['ID']], ID=f'{n}') for n, p in enumerate(sorted(row))]
        want = crowdhuman_mmr(dup_gt, dup_dets)
        assert {k: got['a'][k][r] for k in want} == want, r


def test_bad_input_is_named():
    dataset, dets = random_coco(4, num_images=10)
    gt = coco_of(dataset)
    with pytest.raises(InputError, match='num_resamples: 99 .* at least 100'):
        draw_resamples(10, 99)
    with pytest.raises(InputError, match="detections\\['b'\\]: image_id\\(s\\) not in the "
                                         'ground truth: \\[123456\\]'):
        paired_bootstrap_ap(gt, {'a': dets, 'b': dets + [dict(
            image_id=123456, category_id=1, bbox=[0, 0, 5, 5], score=0.3)]}, np.arange(10)[None])
    with pytest.raises(InputError, match='12 positions per resample but the ground truth has '
                                         '10 images'):
        paired_bootstrap_ap(gt, {'a': dets}, draw_resamples(12, 100))
    with pytest.raises(InputError, match='positions must lie in \\[0, 10\\)'):
        paired_bootstrap_ap(gt, {'a': dets}, np.full((1, 10), 10))
    with pytest.raises(InputError, match='score: nan is not a finite number'):
        paired_bootstrap_ap(gt, {'a': [dict(dets[0], score=float('nan'))]}, np.arange(10)[None])
    n = len(dets)  # the vectorised check lets none of these through, each is named
    for bad, message in [
            (dict(dets[0], bbox=[0, 0, True, 5]), f'\\[{n}\\].bbox: \\[0, 0, True, 5'),
            (dict(dets[0], bbox=(0, 0, 4)), f'\\[{n}\\].bbox: .* not a list of 4'),
            (dict(dets[0], bbox=[0, 0, -1, 5]), 'has a negative width'),
            (dict(dets[0], score='0.5'), f"\\[{n}\\].score: '0.5' is not"),
            ({k: v for k, v in dets[0].items() if k != 'score'},
             f'\\[{n}\\]: missing field\\(s\\) score')]:
        with pytest.raises(InputError, match=message):
            paired_bootstrap_ap(gt, {'a': dets + [bad]}, np.arange(10)[None])
    with pytest.raises(InputError, match='a 95% interval needs at least 100'):
        percentile_interval(np.zeros(50))
    gt, records = random_records(0, num_images=3)
    with pytest.raises(InputError, match="detections\\['m'\\]: detection record 3: ID 'x' is "
                                         'not among the gt IDs'):
        paired_bootstrap_mmr(gt, {'m': records + [dict(ID='x', dtboxes=[])]},
                             np.arange(3)[None])
