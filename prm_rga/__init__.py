"""RGA and PRM for MMDetection (paper: "Delving into the Imbalance of Positive Proposals in
Two-stage Object Detection"). Importing the package registers every module with mmdet's
registries, so configs can name them with ``custom_imports=dict(imports=['prm_rga'])``."""
import warnings

# mmengine 0.10.7 imports setuptools' pkg_resources, which warns on every import of it.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from prm_rga.checkpoint import allow_mmengine_checkpoints  # noqa: E402
from prm_rga.datasets import CrowdHumanODGTDataset
from prm_rga.ensemble import ProposalEnsemble
from prm_rga.eval_dump import EvalDumpHook
from prm_rga.eval_records import EvalRecordHook
from prm_rga.finite_loss_hook import FiniteLossHook
from prm_rga.hard_ratio_sampler import HardRatioSampler
from prm_rga.metrics import (CrowdHumanMMRMetric, GTCountSubsetMetric, crowdhuman_mmr,
                             gt_count_subset_ap)
from prm_rga.parallel_cascade_roi_head import ParallelCascadeRoIHead
from prm_rga.parallel_roi_head import ParallelBBoxHeads, ParallelRoIHead
from prm_rga.pretrained import check_pretrained  # registers the model-zoo checkpoint loader
from prm_rga.rga import AmpRGAOptimWrapper, RGAOptimWrapper, rga_lambda
from prm_rga.telemetry import GradNormHook, RoITelemetryHook

allow_mmengine_checkpoints()

__all__ = [
    'AmpRGAOptimWrapper', 'CrowdHumanMMRMetric', 'CrowdHumanODGTDataset', 'EvalDumpHook',
    'EvalRecordHook',
    'FiniteLossHook', 'GTCountSubsetMetric', 'GradNormHook', 'HardRatioSampler', 'ParallelBBoxHeads',
    'ParallelCascadeRoIHead', 'ParallelRoIHead', 'ProposalEnsemble', 'RGAOptimWrapper',
    'RoITelemetryHook', 'check_pretrained', 'crowdhuman_mmr', 'gt_count_subset_ap', 'rga_lambda'
]
