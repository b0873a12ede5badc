import copy
import logging
import os
import os.path as osp
import shutil
import sys
import tempfile

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

import prm_rga  # noqa: F401  (registers the plugins)
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

register_all_modules()

CONFIGS = osp.join(osp.dirname(__file__), '..', 'experiments', 'configs')

# The tiny configs' backbone is pretrained on first use (prm_rga.synth_backbone), minutes with
# the configs' arguments. Tests that train take it made in seconds with SMALL_BACKBONE, through
# the same path (made by `check_data`, loaded by init_cfg), into one folder for the session that
# every process the tests start finds through $PRM_RGA_SYNTH_BACKBONE.
SMALL_BACKBONE = dict(num_train=12, num_val=4, epochs=1, batch_size=8, crop=32)
BACKBONE_OPTIONS = {f'synth_backbone.{key}': value for key, value in SMALL_BACKBONE.items()}
# A process a test starts (a suite driver importing a test module) keeps the session's folder:
# another one would change every trial's config hash between a launch and its --resume.
OWN_BACKBONE_ROOT = 'PRM_RGA_TEST_BACKBONE_ROOT' not in os.environ
if OWN_BACKBONE_ROOT:
    os.environ['PRM_RGA_TEST_BACKBONE_ROOT'] = tempfile.mkdtemp(prefix='prm_rga_test_backbone_')
BACKBONE_ROOT = os.environ['PRM_RGA_TEST_BACKBONE_ROOT']
os.environ['PRM_RGA_SYNTH_BACKBONE'] = osp.join(BACKBONE_ROOT, 'backbone')


def pytest_sessionfinish(session, exitstatus):
    if OWN_BACKBONE_ROOT:
        shutil.rmtree(BACKBONE_ROOT, ignore_errors=True)


def config(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIGS, name))


def assert_mmdet1_training(cfg, where, proposals=2000):
    """What mmdet 1.x, the paper's framework, trained every detector with (docs/fidelity.md)."""
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=35, norm_type=2), where
    assert cfg.model.train_cfg.rpn_proposal.max_per_img == proposals, where
    assert cfg.param_scheduler[0].type == 'LinearLR', where
    assert cfg.param_scheduler[0].start_factor == 1 / 3, where
    assert cfg.model.train_cfg.rpn.allowed_border == 0, where
    assert cfg.model.rpn_head.loss_bbox == dict(type='SmoothL1Loss', beta=1 / 9,
                                                loss_weight=1.0), where
    roi_head = cfg.model.roi_head
    heads = roi_head.bbox_head if isinstance(roi_head.bbox_head, list) else [roi_head.bbox_head]
    for head in (h for stage in heads for h in (stage if isinstance(stage, list) else [stage])):
        assert head.loss_bbox == dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0), where


def image_sample(size: int = 128) -> DetDataSample:
    """A data sample for an unscaled square image of ``size`` px."""
    shape = (size, size)
    return DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, scale_factor=(1.0, 1.0),
                                       batch_input_shape=shape))


class RoIInputs:
    """FPN features, RPN proposals and GT of a batch, for calling RoI heads directly."""

    def __init__(self, num_imgs=2, num_gts=4, num_proposals=300, channels=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = tuple(
            torch.randn(num_imgs, channels, s, s, generator=g) for s in (32, 16, 8, 4))
        self.samples, self.proposals = [], []
        for _ in range(num_imgs):
            xy = torch.rand(num_gts, 2, generator=g) * 80
            gts = torch.cat([xy, xy + 10 + torch.rand(num_gts, 2, generator=g) * 36], 1)
            sample = image_sample()
            sample.gt_instances = InstanceData(
                bboxes=gts, labels=torch.randint(0, 5, (num_gts, ), generator=g))
            self.samples.append(sample)
            # Half jittered GTs (many positives), half random boxes (negatives).
            near = gts[torch.randint(0, num_gts, (num_proposals // 2, ), generator=g)]
            near = near + torch.randn(len(near), 4, generator=g) * 3
            xy = torch.rand(num_proposals - len(near), 2, generator=g) * 100
            far = torch.cat([xy, xy + 4 + torch.rand(len(xy), 2, generator=g) * 40], 1)
            boxes = torch.cat([near, far]).clamp(0, 127)
            boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)
            self.proposals.append(InstanceData(bboxes=boxes, scores=torch.rand(len(boxes), generator=g)))

    def rpn_results(self):
        """A fresh copy: RoI heads rename the proposal field in place."""
        return copy.deepcopy(self.proposals)

    @property
    def metas(self):
        return [s.metainfo for s in self.samples]


@pytest.fixture(autouse=True)
def loggers_outlive_captures():
    """mmengine's logger is made once per process, its handler on the sys.stdout of that moment;
    made inside a test's capture, that stream is closed after the test and every later log line
    prints a 'Logging error' traceback into whatever test runs next. Such handlers are pointed
    back at the process's stdout."""
    yield
    for logger in list(MMLogger._instance_dict.values()) + [logging.getLogger()]:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, 'closed',
                                                                       False):
                handler.stream = sys.__stdout__  # setStream would flush the closed one


@pytest.fixture
def roi_inputs():
    return RoIInputs()


@pytest.fixture(scope='session')
def fixture_store(tmp_path_factory):
    """tests/mlflow_store.py's store, written once for the report and dashboard tests (they
    only read it)."""
    from mlflow_store import write_store
    return write_store(str(tmp_path_factory.mktemp('mlflow')))


def tiny_scale_yaml(epochs: int = 1, gpus: int = 0) -> str:
    """The `scales:` block of a test suite file: tiny trials on the 16-image synthetic set
    (made by the test at $PRM_RGA_SYNTH), the small pretrained backbone, in-process data
    loading, logging every iteration."""
    return f"""scales:
  tiny:
    resources: {{CPU: 1, GPU: {gpus}}}
    cfg_options:
      synth_data.num_train: 16
      synth_data.num_val: 8
      train_cfg.max_epochs: {epochs}
      train_cfg.val_interval: 1
      default_hooks.logger.interval: 1
      default_hooks.checkpoint.interval: 1
      train_dataloader.num_workers: 0
      train_dataloader.persistent_workers: false
      val_dataloader.num_workers: 0
      val_dataloader.persistent_workers: false
      test_dataloader.num_workers: 0
      test_dataloader.persistent_workers: false
""" + ''.join(f'      {key}: {value}\n' for key, value in BACKBONE_OPTIONS.items())
