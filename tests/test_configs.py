"""Every shipped config loads and builds, and the paper configs hold the paper's settings."""
import glob
import os.path as osp

import pytest

from conftest import CONFIGS, assert_mmdet1_training, config
from mmdet.registry import MODELS

ALL = sorted(osp.relpath(p, CONFIGS) for p in glob.glob(osp.join(CONFIGS, '*', '*.py'))
             if '_base_' not in p)


@pytest.mark.parametrize('name', ALL)
def test_config_builds(name):
    cfg = config(name)
    cfg.model.backbone.init_cfg = None  # no network here; timing and shape do not need it
    model = MODELS.build(cfg.model)
    assert model.with_roi_head


@pytest.mark.parametrize('name', [n for n in ALL if n.endswith('_coco.py')])
def test_paper_settings(name):
    cfg = config(name)
    assert cfg.optim_wrapper.optimizer.lr == 0.02 and cfg.train_dataloader.batch_size == 2
    epochs, steps = (24, [16, 22]) if '_2x' in name else (12, [8, 11])
    assert cfg.train_cfg.max_epochs == epochs and cfg.param_scheduler[1].milestones == steps
    assert cfg.model.roi_head.bbox_roi_extractor.roi_layer.type == 'RoIAlign'
    rcnn = cfg.model.train_cfg.rcnn
    if 'prm_' in name:
        assert [r.sampler.pos_fraction for r in rcnn] == [1 / 2, 1 / 10]  # 1:1 and 1:9
        assert all(r.sampler.num == 512 for r in rcnn)
    else:  # one head at 1:3, in every stage of a cascade
        for stage in rcnn if 'cascade' in name else [rcnn]:
            assert (stage.sampler.num, stage.sampler.pos_fraction) == (512, 0.25)
    if '_rga' in name:
        assert cfg.optim_wrapper.type == 'RGAOptimWrapper' and cfg.optim_wrapper.lambda0 == 7
    else:
        assert cfg.optim_wrapper.type == 'OptimWrapper'


@pytest.mark.parametrize('name', [n for n in ALL if n.endswith(('_coco.py', '_crowdhuman.py'))])
def test_paper_configs_clip_at_35_and_train_on_2000_proposals(name):
    cfg = config(name)
    assert_mmdet1_training(cfg, name)
    assert cfg.model.train_cfg.rpn_proposal.nms_pre == 2000


def test_tiny_configs_train_by_the_same_rules():
    """The same rules at tiny scale, except 300 training proposals for 128 px images."""
    for name in (n for n in ALL if n.startswith('tiny/')):
        assert_mmdet1_training(config(name), name, proposals=300)


def test_synth_gpu_config_is_the_paper_model():
    """The GPU check config changes only data, classes, weights init and schedule."""
    gpu = config('faster_rcnn/faster-rcnn_r50_fpn_rga-prm_synth-gpu.py')
    paper = config('faster_rcnn/faster-rcnn_r50_fpn_rga-prm_1x_coco.py')
    assert gpu.model.train_cfg == paper.model.train_cfg
    assert gpu.model.neck == paper.model.neck and gpu.model.rpn_head == paper.model.rpn_head
    assert gpu.optim_wrapper.type == 'RGAOptimWrapper' and gpu.optim_wrapper.lambda0 == 7
    assert [h.num_classes for h in gpu.model.roi_head.bbox_head] == [5, 5]
    assert gpu.synth_data.image_size == 512
