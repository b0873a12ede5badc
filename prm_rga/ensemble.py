"""Two (or more) separately trained detectors as one proposal-level ensemble: Table 5's
"Faster R-CNN x2", the control showing PRM's gain is not just more parameters.

The first detector's RPN proposes boxes; every detector pools them from its own features and
classifies them with its own head; the pre-softmax logits are averaged, as PRM does, and boxes
are regressed by ``reg_model`` (list the detector trained with the most positives first).
"""
import os.path as osp
import pickle
from typing import List, Optional, Sequence

import torch
from mmengine.runner import load_checkpoint
from torch import Tensor, nn

from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from prm_rga.errors import InputError


def load_member(detector: nn.Module, path: str, field: str) -> None:
    """Load one member's weights strictly: a checkpoint of another config would otherwise leave
    some of its modules randomly initialised without a word."""
    if not osp.isfile(path):
        raise InputError(f'{field}: file not found: {path}')
    try:
        load_checkpoint(detector, path, map_location='cpu', strict=True)
    except (pickle.UnpicklingError, EOFError) as e:
        raise InputError(f'{field}: {path} is not a checkpoint ({e})') from None
    except RuntimeError as e:
        raise InputError(f'{field}: {path} does not fit its detector config: {e}') from None


@MODELS.register_module()
class ProposalEnsemble(BaseDetector):
    """Evaluation-only ensemble of two-stage detectors with ``StandardRoIHead``s.

    Args:
        detectors: the detectors' model configs.
        checkpoints: one checkpoint per detector, loaded at construction.
        reg_model: index of the detector whose box regression is used.
    """

    def __init__(self, detectors: Sequence[dict], checkpoints: Optional[Sequence[str]] = None,
                 reg_model: int = 0, data_preprocessor=None, init_cfg=None) -> None:
        if len(detectors) < 2:
            raise InputError('model.detectors must list at least two detector configs')
        if checkpoints is not None and len(checkpoints) != len(detectors):
            raise InputError(f'model.checkpoints must give one file per detector '
                             f'({len(detectors)}), got {len(checkpoints)}')
        if reg_model not in range(len(detectors)):
            raise InputError(f'model.reg_model must index model.detectors, got {reg_model!r}')
        super().__init__(data_preprocessor=data_preprocessor or detectors[0]['data_preprocessor'],
                         init_cfg=init_cfg)
        self.detectors = nn.ModuleList(MODELS.build(cfg) for cfg in detectors)
        self.reg_model = reg_model
        for i, path in enumerate(checkpoints or []):
            load_member(self.detectors[i], path, f'model.checkpoints[{i}]')

    def extract_feat(self, batch_inputs: Tensor) -> List[tuple]:
        return [det.extract_feat(batch_inputs) for det in self.detectors]

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        feats = self.extract_feat(batch_inputs)
        proposals = self.detectors[0].rpn_head.predict(feats[0], batch_data_samples,
                                                       rescale=False)
        rois = bbox2roi([p.bboxes for p in proposals])
        outs = [det.roi_head._bbox_forward(x, rois) for det, x in zip(self.detectors, feats)]
        cls_score = torch.stack([out['cls_score'] for out in outs]).mean(0)
        roi_head = self.detectors[self.reg_model].roi_head
        num_per_img = [len(p) for p in proposals]
        results = roi_head.bbox_head.predict_by_feat(
            rois=rois.split(num_per_img),
            cls_scores=cls_score.split(num_per_img),
            bbox_preds=outs[self.reg_model]['bbox_pred'].split(num_per_img),
            batch_img_metas=[s.metainfo for s in batch_data_samples],
            rcnn_test_cfg=roi_head.test_cfg,
            rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        raise RuntimeError('ProposalEnsemble only evaluates: train its detectors separately')

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None):
        raise RuntimeError('ProposalEnsemble only evaluates: use predict')
