"""The embedded synthetic dataset: determinism, long tail, geometry, caching, crowd variant, CLI."""
import json
import os
from itertools import combinations

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from prm_rga_cli import main
from prm_rga.datasets import synth
from prm_rga.datasets import SYNTH_CLASSES, make_synth
from prm_rga.errors import InputError

SMALL = dict(num_train=40, num_val=20)
# pycocotools' decode under numpy 2 warns once per call
pytestmark = pytest.mark.filterwarnings('ignore:__array__ implementation:DeprecationWarning')


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    return make_synth(tmp_path_factory.mktemp('synth') / 'set', **SMALL)


@pytest.fixture(scope='module')
def crowd(tmp_path_factory):
    return make_synth(tmp_path_factory.mktemp('crowd') / 'set', num_train=12, num_val=6, crowd=True)


def files(root):
    return sorted(p.relative_to(root) for p in root.rglob('*') if p.is_file())


def pixels(path):
    return np.asarray(Image.open(path))


def load(root, split):
    return json.loads((root / 'annotations' / f'instances_{split}.json').read_text())


def test_same_arguments_give_identical_files(small, tmp_path):
    again = make_synth(tmp_path / 'again', **SMALL)
    assert files(again) == files(small)
    for rel in files(small):
        if rel.suffix == '.png':
            assert np.array_equal(pixels(small / rel), pixels(again / rel)), rel
        else:
            assert (small / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_val_does_not_depend_on_num_train(small, tmp_path):
    other = make_synth(tmp_path / 'other', num_train=7, num_val=20)
    val = small / 'annotations' / 'instances_val.json'
    assert (other / 'annotations' / 'instances_val.json').read_bytes() == val.read_bytes()
    for im in load(small, 'val')['images']:
        name = im['file_name']
        assert np.array_equal(pixels(small / 'val' / name), pixels(other / 'val' / name))
    assert len(load(other, 'train')['images']) == 7


def test_object_count_is_long_tailed(tmp_path):
    data = load(make_synth(tmp_path / 'tail', num_train=0, num_val=300), 'val')
    per_image = np.bincount([a['image_id'] for a in data['annotations']], minlength=301)[1:]
    assert per_image.min() >= 1 and 20 <= per_image.max() <= 25
    assert 0.45 <= np.mean(per_image <= 3) <= 0.55
    assert 0.25 <= np.mean((per_image >= 4) & (per_image <= 7)) <= 0.30
    assert 0.20 <= np.mean(per_image >= 8) <= 0.25


def test_boxes_are_the_polygon_bounds_inside_the_image(small):
    for split in ('train', 'val'):
        data = load(small, split)
        sizes = {im['id']: (im['width'], im['height']) for im in data['images']}
        assert [c['name'] for c in data['categories']] == list(SYNTH_CLASSES)
        for a in data['annotations']:
            poly = np.asarray(a['segmentation'][0]).reshape(-1, 2)
            x, y, w, h = a['bbox']
            assert [x, y, x + w, y + h] == [*poly.min(0), *poly.max(0)]
            W, H = sizes[a['image_id']]
            assert 0 <= x and 0 <= y and x + w <= W and y + h <= H and w >= 1 and h >= 1
            assert a['area'] > 0 and a['iscrowd'] == 0
            assert 1 <= a['category_id'] <= len(SYNTH_CLASSES)


def test_pycocotools_masks(small):
    coco = COCO(str(small / 'annotations' / 'instances_train.json'))
    sizes = []
    for a in coco.dataset['annotations']:
        mask = coco.annToMask(a)
        rows, cols = np.nonzero(mask)
        x, y, w, h = a['bbox']
        assert mask.sum() > 0
        assert x <= cols.min() and cols.max() < x + w and y <= rows.min() and rows.max() < y + h
        sizes.append(a['area'])
    assert min(sizes) < 32**2 < max(sizes)  # COCO small and medium both occur


def test_cache_is_reused_untouched(small):
    before = {rel: os.stat(small / rel).st_mtime_ns for rel in files(small)}
    assert make_synth(small, **SMALL) == small
    assert {rel: os.stat(small / rel).st_mtime_ns for rel in files(small)} == before


def test_other_arguments_raise_unless_forced(tmp_path):
    out = make_synth(tmp_path / 'set', num_train=3, num_val=2)
    with pytest.raises(InputError, match='num_val') as err:
        make_synth(out, num_train=3, num_val=4)
    assert str(out) in str(err.value)
    make_synth(out, num_train=3, num_val=4, force=True)
    assert json.loads((out / 'manifest.json').read_text())['args']['num_val'] == 4
    assert len(list((out / 'val').iterdir())) == 4


def test_foreign_directory_is_never_overwritten(tmp_path):
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'notes.txt').write_text('keep')
    for force in (False, True):
        with pytest.raises(InputError, match='not a finished synthetic set'):
            make_synth(mine, num_train=2, num_val=1, force=force)
    assert (mine / 'notes.txt').read_text() == 'keep'


def test_interrupted_runs_leave_nothing_that_looks_complete(tmp_path, monkeypatch):
    out = tmp_path / 'set'
    # a run killed outright leaves only its hidden temporary sibling behind
    leftover = tmp_path / '.set.partial-killed'
    (leftover / 'train').mkdir(parents=True)
    (leftover / 'train' / '000000.png').write_bytes(b'')
    # an interrupted run cleans up and leaves no out_dir
    real = synth._shapes_image
    calls = []

    def dies(*args):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(synth, '_shapes_image', dies)
    with pytest.raises(KeyboardInterrupt):
        make_synth(out, num_train=5, num_val=2)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.set.partial-killed']
    monkeypatch.undo()
    make_synth(out, num_train=5, num_val=2)
    assert len(load(out, 'train')['images']) == 5


def test_crowd_odgt(crowd):
    assert {p.name for p in crowd.iterdir()} == {
        'Images', 'annotations', 'annotation_train.odgt', 'annotation_val.odgt', 'manifest.json'}
    records, best_iou = [], 0.0
    for split in ('train', 'val'):
        for line in (crowd / f'annotation_{split}.odgt').read_text().splitlines():
            rec = json.loads(line)
            assert set(rec) == {'ID', 'width', 'height', 'gtboxes'}
            assert (crowd / 'Images' / f'{rec["ID"]}.png').is_file()
            for g in rec['gtboxes']:
                assert set(g) == {'tag', 'fbox', 'vbox', 'hbox', 'extra', 'head_attr'}
                assert g['tag'] in ('person', 'mask')
                assert set(g['extra']) == {'ignore', 'box_id', 'occ'}
            people = [np.asarray(g['fbox']) for g in rec['gtboxes'] if g['tag'] == 'person']
            for a, b in combinations(people, 2):
                best_iou = max(best_iou, iou(a, b))
            records.append(rec)
    boxes = [g for r in records for g in r['gtboxes']]
    assert any(g['tag'] == 'mask' for g in boxes)
    assert any(g['tag'] == 'person' and g['extra']['ignore'] == 1 for g in boxes)
    assert any(g['fbox'][0] < 0 or g['fbox'][0] + g['fbox'][2] > 128 for g in boxes)
    assert best_iou > 0.5
    assert np.mean([sum(g['tag'] == 'person' for g in r['gtboxes']) for r in records]) >= 8


def test_crowd_coco_json(crowd):
    coco = COCO(str(crowd / 'annotations' / 'instances_val.json'))
    anns = coco.dataset['annotations']
    assert coco.dataset['categories'] == [dict(id=1, name='person')]
    assert any(a['iscrowd'] for a in anns) and any(not a['iscrowd'] for a in anns)
    for a in anns:
        x, y, w, h = a['bbox']
        assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128 and w >= 1 and h >= 1


def iou(a, b):
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_cli(tmp_path, capsys):
    out = str(tmp_path / 'set')
    assert main(['data', 'synth', '--out', out, '--train', '6', '--val', '3']) == 0
    assert 'wrote' in capsys.readouterr().out
    assert main(['data', 'synth', '--out', out, '--train', '6', '--val', '3']) == 0
    printed = capsys.readouterr().out
    assert 'reused' in printed and '[8,inf)' in printed and 'train: 6 images' in printed
    assert main(['data', 'synth', '--out', out, '--train', '6', '--val', '4']) == 2
    assert 'num_val' in capsys.readouterr().err


def test_mmdet_coco_dataset_loads_it(small):
    pytest.importorskip('mmdet')
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    dataset = CocoDataset(
        data_root=str(small), ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'), metainfo=dict(classes=SYNTH_CLASSES),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    item = dataset[0]
    image_id = dataset.get_data_info(0)['img_id']
    expected = [a for a in load(small, 'val')['annotations'] if a['image_id'] == image_id]
    assert item['img'].shape == (128, 128, 3)
    assert len(item['gt_bboxes']) == len(item['gt_masks']) == len(expected) > 0
