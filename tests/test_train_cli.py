"""`prm-rga train`: bad input is named before anything is built; a tiny run trains, resumes the
RGA schedule where it stopped, and learns."""
import json
import os.path as osp
import re

import pytest

from conftest import BACKBONE_OPTIONS, CONFIGS
from prm_rga_cli import main
from prm_rga.datasets import make_synth

PRM = osp.join(CONFIGS, 'tiny', 'faster-rcnn_tiny_rga-prm_synth.py')


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.fixture(scope='module')
def small_synth(tmp_path_factory):
    root = tmp_path_factory.mktemp('synth')
    make_synth(root, seed=3, num_train=48, num_val=16)
    return str(root)


def data_options(root):
    return [f'data_root={root}/', f'synth_data.out_dir={root}',
            'synth_data.num_train=48', 'synth_data.num_val=16', 'synth_data.seed=3',
            f'train_dataloader.dataset.data_root={root}/',
            f'val_dataloader.dataset.data_root={root}/',
            f'test_dataloader.dataset.data_root={root}/',
            f'val_evaluator.ann_file={root}/annotations/instances_val.json',
            f'test_evaluator.ann_file={root}/annotations/instances_val.json',
            *(f'{key}={value}' for key, value in BACKBONE_OPTIONS.items())]


@pytest.mark.parametrize('options, message', [
    (['model.roi_head.bbox_head.1.type=NoSuchHead'], r'roi_head.bbox_head\[1\].type'),
    (['model.train_cfg.rcnn.1.sampler.pos_fraction=1.5'],
     r'train_cfg.rcnn\[1\].sampler.pos_fraction'),
    (['optim_wrapper.lambda0=0.5'], 'optim_wrapper.lambda0'),
])
def test_bad_config_values_are_named(capsys, tmp_path, small_synth, options, message):
    code, err = run(capsys, 'train', PRM, '--work-dir', str(tmp_path), '--cfg-options',
                    *data_options(small_synth), *options)
    assert code == 2 and re.search(message, err), err


def test_mismatched_head_and_sampler_lists(capsys, tmp_path, small_synth):
    config = tmp_path / 'one_sampler.py'
    config.write_text(f"_base_ = {PRM!r}\n_rcnn = {{{{_base_._rcnn_11}}}}\n"
                      "model = dict(train_cfg=dict(rcnn=[_rcnn]))\n")
    code, err = run(capsys, 'train', str(config), '--work-dir', str(tmp_path),
                    '--cfg-options', *data_options(small_synth))
    assert code == 2 and 'train_cfg.rcnn must be a list with one' in err, err


def test_missing_config_dataset_and_corrupt_annotations(capsys, tmp_path, small_synth):
    code, err = run(capsys, 'train', str(tmp_path / 'nope.py'))
    assert code == 2 and 'nope.py' in err
    code, err = run(capsys, 'train', PRM, '--work-dir', str(tmp_path), '--cfg-options',
                    *data_options(small_synth), 'synth_data=None',
                    f'train_dataloader.dataset.data_root={tmp_path}/missing/')
    assert code == 2 and 'train_dataloader.dataset.ann_file' in err and 'missing' in err
    bad = tmp_path / 'bad'
    (bad / 'annotations').mkdir(parents=True)
    (bad / 'train').mkdir()
    (bad / 'annotations' / 'instances_train.json').write_text('{"images": [')
    code, err = run(capsys, 'train', PRM, '--work-dir', str(tmp_path), '--cfg-options',
                    *data_options(small_synth), 'synth_data=None',
                    f'train_dataloader.dataset.data_root={bad}/')
    assert code == 2 and 'instances_train.json is not valid JSON' in err, err
    (bad / 'annotations' / 'instances_train.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='a.png', width=64, height=64)], categories=[],
        annotations=[dict(id=1, image_id=1, bbox=[0, 0, 5, 5]),
                     dict(id=2, image_id=1, bbox=[10, 10, -4, 5])])))
    code, err = run(capsys, 'train', PRM, '--work-dir', str(tmp_path), '--cfg-options',
                    *data_options(small_synth), 'synth_data=None',
                    f'train_dataloader.dataset.data_root={bad}/')
    assert code == 2 and re.search(r'instances_train.json, annotations\[1\]\.bbox: '
                                   r'\[10, 10, -4, 5\] has a negative width', err), err
    assert not (tmp_path / 'last_checkpoint').exists()


def scalars(work_dir):
    """mmengine's scalar log of the runs in work_dir: one dict per logged step."""
    (log, ) = work_dir.glob('*/vis_data/scalars.json')  # the first run's; both log to it
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_resume_continues_the_lambda_schedule(capsys, tmp_path, small_synth):
    """Stop after 1 of 2 epochs, resume, and get lambda exactly where an unbroken run has it."""
    opts = data_options(small_synth) + ['train_dataloader.batch_size=8',
                                        'default_hooks.logger.interval=1',
                                        'default_hooks.checkpoint.interval=1',
                                        'train_cfg.val_interval=100',
                                        # mmengine keeps one visualizer per name and process
                                        f'visualizer.name={tmp_path.name}']
    assert main(['train', PRM, '--work-dir', str(tmp_path), '--cfg-options', *opts,
                 'train_cfg.max_epochs=1', 'param_scheduler.1.end=2']) == 0
    # The same schedule over 2 epochs, started from the epoch-1 checkpoint.
    assert main(['train', PRM, '--work-dir', str(tmp_path), '--resume', '--cfg-options', *opts,
                 'train_cfg.max_epochs=2', 'param_scheduler.1.end=2']) == 0
    iters_per_epoch, total = 6, 12
    # mmengine logs step = iteration index + 1; the first run's steps 1-6 come first. A resume
    # that restarted the schedule would log lambda 7 at step 7, where it is 4.
    resumed = {row['step']: row['lambda'] for row in scalars(tmp_path)
               if 'lambda' in row and row['step'] > iters_per_epoch}
    assert sorted(resumed) == list(range(iters_per_epoch + 1, total + 1))
    for step, lam in resumed.items():
        assert lam == pytest.approx(7 - 6 * (step - 1) / total)


def test_nan_loss_stops_training_with_the_terms_named(capsys, tmp_path, small_synth):
    config = tmp_path / 'nan_loss.py'
    config.write_text(f"_base_ = {PRM!r}\n"
                      "model = dict(rpn_head=dict(loss_bbox=dict(loss_weight=float('nan'))))\n")
    code, err = run(capsys, 'train', str(config), '--work-dir', str(tmp_path), '--cfg-options',
                    *data_options(small_synth), f'visualizer.name={tmp_path.name}')
    assert code == 1, err
    assert 'diverged at iteration 1' in err and 'loss_rpn_bbox=nan' in err, err
    assert not (tmp_path / 'last_checkpoint').exists()


def test_tiny_training_learns_and_logs_its_telemetry(tmp_path, small_synth):
    """RGA+PRM from scratch fits its 48 training images in 180 iterations: the loss halves and
    the bbox mAP on those images (the val loader reads the train split here) leaves zero, where
    an untrained detector is. The same run (the tiny PRM config) logs the per-head telemetry
    every iteration, gradient norms at their interval, val AP per GT-count subset and per head,
    and leaves the val dumps."""
    train_ann = f'{small_synth}/annotations/instances_train.json'
    assert main(['train', PRM, '--work-dir', str(tmp_path), '--cfg-options',
                 *data_options(small_synth),
                 'val_dataloader.dataset.ann_file=annotations/instances_train.json',
                 'val_dataloader.dataset.data_prefix.img=train/',
                 f'val_evaluator.ann_file={train_ann}',
                 'train_cfg.max_epochs=30', 'train_cfg.val_interval=30',
                 'param_scheduler.1.milestones=[24,28]', 'default_hooks.logger.interval=1',
                 'default_hooks.checkpoint.interval=30', 'randomness.seed=0',
                 f'visualizer.name={tmp_path.name}']) == 0
    rows = scalars(tmp_path)
    train = [row for row in rows if 'loss' in row]
    losses = [row['loss'] for row in train]
    assert len(losses) == 30 * 6
    assert sum(losses[-12:]) < 0.5 * sum(losses[:12]), (losses[:12], losses[-12:])
    (val, ) = [row for row in rows if 'val/bbox_mAP' in row]
    assert val['val/bbox_mAP'] > 0.02 and val['val/bbox_mAP_50'] > 0.06, val

    for row in train:
        for key in ('num_pos', 'acc_pos', 'acc_neg'):
            assert {f'{key}/h0', f'{key}/h1'} <= set(row), row
        assert row['num_pos/h0'] >= row['num_pos/h1']  # 1:1 takes more positives than 1:9
    assert sum(r['num_pos/h0'] for r in train) > sum(r['num_pos/h1'] for r in train)
    # the config's GradNormHook measures every 20 iterations; the log keeps the last value
    grad_steps = [row['step'] for row in train if 'grad_fnorm/sum' in row]
    assert grad_steps[0] == 20 and all('grad_fnorm/h1' in r for r in train if r['step'] >= 20)
    for key in ('val/gt1-3/bbox_mAP', 'val/gt8-inf/bbox_mAP', 'val/h0/bbox_mAP',
                'val/h1/bbox_mAP', 'val/h1/gt4-7/bbox_mAP'):
        assert key in val, sorted(val)
    artifacts = tmp_path / 'artifacts'
    assert (artifacts / 'scores.npz').exists()
    assert len((artifacts / 'rpn_pos_vs_gt.csv').read_text().splitlines()) == 1 + 48
