"""The paper configs train from this install, on CPU, through their own ImageNet init_cfg: the
weights come from the pretrained folder (no torchvision, no network), missing weights and data
that cannot train are refused before anything starts (exit 2, nothing left behind)."""
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from PIL import Image

from conftest import CONFIGS, config
from mmdet.datasets import CocoDataset
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS
from prm_rga_cli import main
from prm_rga.errors import InputError
from prm_rga.pretrained import zoo_url

COCO_CLASSES = CocoDataset.METAINFO['classes']
R50_FILE = osp.basename(zoo_url('torchvision://resnet50'))
RGA_PRM = 'faster_rcnn/faster-rcnn_r50_fpn_rga-prm_1x_coco.py'
CASCADE = 'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'
# 4 training images of 320x240 at batch 2 (the paper's) for 1 epoch: 2 iterations, then one
# evaluation on 1 val image; gradient norms every 2 iterations.
SMALL = {
    'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
    'train_dataloader.dataset.pipeline.2.scale': 320,  # Resize: 320x240 stays as it is
    'val_dataloader.dataset.pipeline.1.scale': 320, 'test_dataloader.dataset.pipeline.1.scale': 320,
    'custom_hooks.2.interval': 2,
    'default_hooks.logger.interval': 1, 'default_hooks.checkpoint.interval': 1,
    **{f'{split}_dataloader.{key}': value for split in ('train', 'val', 'test')
       for key, value in (('num_workers', 0), ('persistent_workers', False))},
}


def make_coco(root, classes=COCO_CLASSES, annotate=True, seed=0):
    """COCO 2017's layout (train2017/, val2017/, annotations/instances_*2017.json): images of
    coloured boxes on noise, each box one of ``classes``."""
    rng = np.random.default_rng(seed)
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(classes)]
    for split, count in (('train2017', 4), ('val2017', 1)):
        os.makedirs(osp.join(root, split))
        images, annotations = [], []
        for i in range(count):
            pixels = rng.integers(0, 80, (240, 320, 3), dtype=np.uint8)
            for _ in range(rng.integers(1, 5)):
                x, y = rng.integers(0, 200), rng.integers(0, 140)
                w, h = rng.integers(30, 110), rng.integers(30, 90)
                pixels[y:y + h, x:x + w] = rng.integers(100, 255, 3)
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=i + 1, bbox=[int(x), int(y), int(w), int(h)],
                    area=int(w * h), iscrowd=0, category_id=int(rng.integers(1, len(classes) + 1))))
            name = f'{i + 1:012d}.png'
            Image.fromarray(pixels).save(osp.join(root, split, name))
            images.append(dict(id=i + 1, file_name=name, width=320, height=240))
        os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, categories=categories,
                           annotations=annotations if annotate else []), f)
    return str(root)


def write_stand_in_resnet50(path, seed=1) -> dict:
    """torchvision's ResNet-50 file format (mmdet's ResNet has its key names, plus ``fc``) with
    random values: convolutions He-initialised, BN statistics and affines random but sane, so
    the frozen, eval-mode stem passes images on without blowing up."""
    torch.manual_seed(seed)
    state = {}
    for key, value in ResNet(depth=50).state_dict().items():
        if key.endswith('num_batches_tracked'):
            continue
        if key.endswith('running_var'):
            value = torch.rand_like(value) + 0.5
        elif value.dim() == 4:
            value = torch.randn_like(value) * math.sqrt(2 / value[0].numel())
        elif key.endswith('weight'):
            value = torch.rand_like(value) * 0.5 + 0.25
        else:  # BN bias and running_mean
            value = torch.randn_like(value) * 0.1
        state[key] = value
    state['fc.weight'], state['fc.bias'] = torch.randn(1000, 2048) * 0.01, torch.zeros(1000)
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(state, path)
    return state


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    return make_coco(tmp_path_factory.mktemp('coco'))


@pytest.fixture(scope='module')
def torch_home(tmp_path_factory):
    """A torch home whose hub cache holds the stand-in ResNet-50, where torch keeps downloads."""
    home = tmp_path_factory.mktemp('torch')
    state = write_stand_in_resnet50(str(home / 'hub' / 'checkpoints' / R50_FILE))
    return str(home), state


@pytest.fixture
def paper_env(monkeypatch, coco, torch_home):
    monkeypatch.setenv('PRM_RGA_COCO', coco)
    monkeypatch.setenv('TORCH_HOME', torch_home[0])
    monkeypatch.delenv('PRM_RGA_PRETRAINED', raising=False)
    return torch_home[1]


def options(values: dict) -> list:
    return [f'{k}={v}' for k, v in values.items()]


def scalars(work_dir):
    (log, ) = work_dir.glob('*/vis_data/scalars.json')
    return [json.loads(line) for line in log.read_text().splitlines()]


def assert_trained_from(checkpoint_path, state):
    """The frozen stem still holds the file's values after training; the rest trained."""
    trained = torch.load(checkpoint_path, map_location='cpu')['state_dict']
    assert torch.equal(trained['backbone.conv1.weight'], state['conv1.weight'])
    assert torch.equal(trained['backbone.bn1.running_mean'], state['bn1.running_mean'])


def test_paper_config_trains_from_the_pretrained_file(tmp_path, paper_env, capsys):
    """Faster R-CNN RGA+PRM by `prm-rga train`; the Cascade R-CNN base config trains in the
    suite trial below (as RGA+PRM), so each paper detector trains once."""
    name = RGA_PRM
    code = main(['train', osp.join(CONFIGS, name), '--work-dir', str(tmp_path),
                 '--cfg-options', *options(SMALL), f'visualizer.name={tmp_path.name}'])
    assert code == 0, capsys.readouterr().err[-3000:]
    assert_trained_from(tmp_path / 'epoch_1.pth', paper_env)
    rows = scalars(tmp_path)
    train = [row for row in rows if 'loss' in row]
    assert len(train) == 2 and all(math.isfinite(row['loss']) for row in train), train
    heads = ('h0', 'h1') if 'prm' in name else ('h0', )
    for head in heads:
        assert all(f'num_pos/{head}' in row and f'acc_neg/{head}' in row for row in train)
        assert any(f'grad_fnorm/{head}' in row for row in train)
    if 'rga' in name:
        assert [row['lambda'] for row in train] == [7, 4]  # 7 - 6 t / T, T = 2
    (val, ) = [row for row in rows if 'val/bbox_mAP' in row]
    assert {'val/bbox_mAP_50', 'val/gt1-3/bbox_mAP'} <= set(val), sorted(val)
    if 'prm' in name:
        assert 'val/h1/bbox_mAP' in val
    scores = np.load(tmp_path / 'artifacts' / 'scores.npz')
    assert scores['h0'].shape[1] == len(COCO_CLASSES) + 1
    assert len((tmp_path / 'artifacts' / 'rpn_pos_vs_gt.csv').read_text().splitlines()) == 1 + 1


# The Cascade trial's six R-CNN heads (3 stages x 2) on 128 RoIs an image from 300 proposals,
# not 512 from 2000 (1000 at test): their fc layers were most of the test's time on one CPU.
FEWER_ROIS = {
    **{f'model.train_cfg.rcnn.{stage}.{head}.sampler.num': 128
       for stage in range(3) for head in range(2)},
    'model.train_cfg.rpn_proposal.max_per_img': 300, 'model.test_cfg.rpn.max_per_img': 300,
}


def paper_suite(tmp_path) -> str:
    """One Cascade R-CNN RGA+PRM trial at the paper scale, its resources lowered to a CPU."""
    lines = ["description: one paper-scale trial on a CPU",
             "params: {detector: cascade_rcnn, ratios: '1:1,1:9', lambda0: 7}",
             'scales:', '  paper:', '    resources: {CPU: 1, GPU: 0}', '    cfg_options:']
    lines += [f'      {k}: {json.dumps(v)}' for k, v in {**SMALL, **FEWER_ROIS}.items()]
    path = tmp_path / 'paper_cpu.yaml'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def suite_args(tmp_path):
    return ['--scale', 'paper', '--tracking-uri', f'sqlite:///{tmp_path}/mlruns/mlflow.db',
            '--storage-path', f'{tmp_path}/tune', '--work-dir', f'{tmp_path}/work',
            '--flush-interval', '1', '--calibrate-iters', '0']


def test_paper_scale_suite_trial_on_cpu(tmp_path, paper_env, monkeypatch, torch_home, capsys):
    """The same weights through $PRM_RGA_PRETRAINED, in a Ray worker, tracked in MLflow."""
    folder = tmp_path / 'weights'
    folder.mkdir()
    os.symlink(osp.join(torch_home[0], 'hub', 'checkpoints', R50_FILE), folder / R50_FILE)
    monkeypatch.setenv('PRM_RGA_PRETRAINED', str(folder))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty-torch-home'))
    code = main(['suite', 'run', paper_suite(tmp_path), *suite_args(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and '1 of 1 trials finished' in out, out
    client = MlflowClient(f'sqlite:///{tmp_path}/mlruns/mlflow.db')
    experiment = client.get_experiment_by_name('paper_cpu')
    (run, ) = [r for r in client.search_runs([experiment.experiment_id])
               if 'mlflow.parentRunId' in r.data.tags]
    assert run.info.status == 'FINISHED' and run.data.tags['scale'] == 'paper'
    metrics = run.data.metrics
    assert {'train/loss', 'train/lambda', 'train/num_pos/h0', 'train/num_pos/h1',
            'train/acc_neg/h0', 'train/acc_neg/h1', 'train/grad_fnorm/h0', 'train/grad_fnorm/h1',
            'val/bbox_mAP', 'val/bbox_mAP_50', 'val/gt1-3/bbox_mAP', 'val/h1/bbox_mAP'} <= set(
        metrics), sorted(metrics)
    history = client.get_metric_history(run.info.run_id, 'train/loss')
    assert len(history) == 2 and all(math.isfinite(m.value) for m in history)
    lambdas = client.get_metric_history(run.info.run_id, 'train/lambda')
    assert [m.value for m in lambdas] == [7, 4]  # 7 - 6 t / T, T = 2
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {'config.py', 'scores.npz', 'rpn_pos_vs_gt.csv'} <= artifacts, artifacts
    scores = np.load(client.download_artifacts(run.info.run_id, 'scores.npz', str(tmp_path)))
    assert scores['h1'].shape[1] == len(COCO_CLASSES) + 1
    (checkpoint, ) = (tmp_path / 'work').glob('*/*/epoch_1.pth')
    assert_trained_from(checkpoint, paper_env)


def test_missing_weights_are_refused_before_anything_starts(tmp_path, paper_env, monkeypatch,
                                                            capsys):
    empty = tmp_path / 'no-weights'
    empty.mkdir()
    monkeypatch.setenv('PRM_RGA_PRETRAINED', str(empty))
    expected = (f'model.backbone.init_cfg.checkpoint: pretrained weights torchvision://resnet50 '
                f'not found: expected {empty}/{R50_FILE} (in $PRM_RGA_PRETRAINED). Put '
                f'{R50_FILE} there')
    code = main(['train', osp.join(CONFIGS, RGA_PRM), '--work-dir', str(tmp_path / 'train')])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and 'Ray workers need the same file' in err, err
    assert not (tmp_path / 'train').exists()

    code = main(['suite', 'run', paper_suite(tmp_path), *suite_args(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and 'trial seed=0: ' + expected in err, err
    assert not (tmp_path / 'mlruns').exists() and not (tmp_path / 'work').exists()

    monkeypatch.delenv('PRM_RGA_PRETRAINED')  # a file named in the config, not there
    code = main(['train', osp.join(CONFIGS, CASCADE), '--work-dir', str(tmp_path / 'train'),
                 '--cfg-options', f'model.backbone.init_cfg.checkpoint={empty}/r50.pth'])
    err = capsys.readouterr().err
    assert code == 2 and (f'model.backbone.init_cfg.checkpoint: checkpoint {empty}/r50.pth not '
                          'found') in err, err

    # mmdet's own tools/train.py has no check before the run: the loader names the file then
    cfg = config(RGA_PRM)
    model = MODELS.build(cfg.model)
    monkeypatch.setenv('PRM_RGA_PRETRAINED', str(empty))
    with pytest.raises(InputError, match=f'expected {empty}/{R50_FILE}'):
        model.init_weights()


def test_a_joined_cluster_gets_the_drivers_weights_folder(monkeypatch, tmp_path):
    """Trials resolve model-zoo names on their worker: the driver's $PRM_RGA_PRETRAINED goes
    with them (Ray's runtime_env), a private local Ray inherits it."""
    from experiments import launcher
    calls = []
    monkeypatch.setattr(launcher.ray, 'init', lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv('PRM_RGA_PRETRAINED', str(tmp_path))
    launcher._init_ray('auto')
    launcher._init_ray('local')
    assert calls[0]['runtime_env'] == {'env_vars': {'PRM_RGA_PRETRAINED': str(tmp_path)}}
    assert 'runtime_env' not in calls[1]


@pytest.mark.parametrize('data, messages', [
    (dict(classes=('circle', 'square', 'triangle')),
     ["its categories do not include 80 of the config's 80 classes (person, bicycle, car",
      "the file's categories (circle, square, triangle)"]),
    (dict(annotate=False),
     ["no training image is left after filtering (filter_cfg={'filter_empty_gt': True, "
      "'min_size': 32}): 4 images, 0 with a box of the config's classes"]),
])
def test_datasets_that_cannot_train_are_refused(tmp_path, paper_env, monkeypatch, capsys, data,
                                                messages):
    root = make_coco(tmp_path / 'coco', **data)
    monkeypatch.setenv('PRM_RGA_COCO', root)
    code = main(['train', osp.join(CONFIGS, RGA_PRM), '--work-dir', str(tmp_path / 'work')])
    err = capsys.readouterr().err
    assert code == 2, err
    ann = f'train_dataloader.dataset.ann_file: {root}/annotations/instances_train2017.json: '
    assert 'prm-rga: error: ' + ann in err, err
    assert all(message in err for message in messages), err
    assert not (tmp_path / 'work').exists()
