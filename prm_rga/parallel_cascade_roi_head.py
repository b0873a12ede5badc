"""PRM on Cascade R-CNN (Tables 2 and 3): parallel bbox heads in every cascade stage.

Each stage averages its heads' logits as ``ParallelRoIHead`` does; the stage's regressing head
(largest positive fraction) refines the boxes passed to the next stage, in training from its own
sampled RoIs, exactly where a plain cascade uses its single head.
"""
from typing import List, Tuple

import torch
from mmengine.model import ModuleList
from torch import Tensor

from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import InstanceList
from prm_rga.errors import InputError
from prm_rga.parallel_roi_head import (HeadPredictions, ParallelBBoxHeads, build_samplers,
                                       sample_per_head)


@MODELS.register_module()
class ParallelCascadeRoIHead(HeadPredictions, CascadeRoIHead):
    """Cascade RoI head whose stages each hold parallel bbox heads.

    Args:
        bbox_head: one list of bbox head configs per stage.
        test_head: ``None`` for the ensemble, or the index of the head used in every stage.
        predict_each_head: also predict with each head alone (the same index in every stage),
            see ``HeadPredictions``.
        train_cfg: ``model.train_cfg.rcnn``: per stage, a list with one assigner/sampler config
            per head of that stage.
    """

    def __init__(self, num_stages: int, stage_loss_weights, bbox_head: List[list],
                 test_head=None, mask_head=None, predict_each_head: bool = False,
                 **kwargs) -> None:
        if mask_head is not None:
            raise InputError('roi_head.mask_head: ParallelCascadeRoIHead predicts boxes only')
        if not isinstance(bbox_head, (list, tuple)) or len(bbox_head) != num_stages:
            raise InputError(f'roi_head.bbox_head must hold one list of heads per stage '
                             f'(num_stages={num_stages})')
        train_cfg = kwargs.get('train_cfg')
        if train_cfg and len(train_cfg) != num_stages:
            raise InputError(f'train_cfg.rcnn must hold one list per stage '
                             f'(num_stages={num_stages}), got {len(train_cfg)}')
        super().__init__(num_stages, stage_loss_weights, bbox_head=bbox_head, **kwargs)
        self.test_head = test_head
        self.predict_each_head = predict_each_head

    @property
    def num_heads(self) -> int:
        return min(len(heads) for heads in self.bbox_head)

    @property
    def test_head(self):
        return self.bbox_head[0].test_head

    @test_head.setter
    def test_head(self, index) -> None:
        if index is not None and index not in range(self.num_heads):
            raise InputError(f'roi_head.test_head must be None or a head index in '
                             f'[0, {self.num_heads}), got {index!r}')
        for heads in self.bbox_head:
            heads.test_head = index

    def init_bbox_head(self, bbox_roi_extractor, bbox_head: List[list]) -> None:
        if not isinstance(bbox_roi_extractor, list):
            bbox_roi_extractor = [bbox_roi_extractor] * self.num_stages
        self.bbox_roi_extractor = ModuleList(MODELS.build(cfg) for cfg in bbox_roi_extractor)
        self.bbox_head = ModuleList(
            ParallelBBoxHeads(cfgs, f'roi_head.bbox_head[{stage}]',
                              self.train_cfg[stage] if self.train_cfg else None,
                              f'train_cfg.rcnn[{stage}]')
            for stage, cfgs in enumerate(bbox_head))

    def init_assigner_sampler(self) -> None:
        self.bbox_assigner, self.bbox_sampler, self.share_assignment = [], [], []
        for stage, cfgs in enumerate(self.train_cfg or []):
            self.current_stage = stage
            assigners, samplers, share = build_samplers(cfgs, self)
            self.bbox_assigner.append(assigners)
            self.bbox_sampler.append(samplers)
            self.share_assignment.append(share)

    def _roi_feats(self, stage: int, x: Tuple[Tensor], rois: Tensor) -> Tensor:
        extractor = self.bbox_roi_extractor[stage]
        return extractor(x[:extractor.num_inputs], rois)

    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
             batch_data_samples: SampleList) -> dict:
        batch_img_metas = unpack_gt_instances(batch_data_samples)[2]
        losses = {}
        results_list = rpn_results_list
        for stage in range(self.num_stages):
            self.current_stage = stage
            sampled = sample_per_head(self.bbox_assigner[stage], self.bbox_sampler[stage],
                                      self.share_assignment[stage], x, results_list,
                                      batch_data_samples)
            stage_losses, outputs = self.bbox_head[stage].loss(
                lambda rois: self._roi_feats(stage, x, rois), sampled, self.train_cfg[stage])
            weight = self.stage_loss_weights[stage]
            for name, value in stage_losses.items():
                losses[f's{stage}.{name}'] = value * weight if 'loss' in name else value
            if stage < self.num_stages - 1:
                reg = int(self.bbox_head[stage].reg_index)
                with torch.no_grad():
                    results_list = self.bbox_head[stage][reg].refine_bboxes(
                        sampled[reg], outputs[reg], batch_img_metas)
                if results_list is None:
                    break
        return losses
