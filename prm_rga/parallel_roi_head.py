"""Parallel R-CNN Modules (PRM, paper Sec. 3.2 and Fig. 4).

Several bbox heads share the backbone, the RPN and the RoI extractor. In training each head
samples its own RoIs from the same proposals with its own positive fraction; at test time the
pre-softmax class logits of all heads are averaged ("average ensemble") and the boxes are
regressed by the head trained with the largest positive fraction.
"""
import copy
from typing import Callable, List, Sequence, Tuple

import torch
from mmengine.model import ModuleList
from torch import Tensor, nn

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList
from prm_rga.errors import InputError
from prm_rga.hard_ratio_sampler import check_pos_fraction


def check_rcnn_cfgs(cfgs, num_heads: int, field: str) -> None:
    """One assigner/sampler config per head, each with a usable positive fraction."""
    if not isinstance(cfgs, (list, tuple)) or len(cfgs) != num_heads:
        got = len(cfgs) if isinstance(cfgs, (list, tuple)) else type(cfgs).__name__
        raise InputError(f'{field} must be a list with one assigner/sampler entry per bbox '
                         f'head ({num_heads}), got {got}')
    for i, cfg in enumerate(cfgs):
        check_pos_fraction(cfg['sampler'].get('pos_fraction'), f'{field}[{i}].sampler.pos_fraction')


class ParallelBBoxHeads(ModuleList):
    """The parallel bbox heads of one R-CNN stage, standing where that stage's single bbox head
    stands, so that mmdet's own test-time code of ``StandardRoIHead`` and ``CascadeRoIHead``
    runs unchanged on top.

    An mmengine ``ModuleList``: ``init_weights`` runs each head's own ``init_cfg``, so every
    head starts exactly as a single head would. ``forward`` returns the class logits averaged
    over the heads (or those of ``test_head`` alone) and the box deltas of the predicting head.
    What mmdet's RoI heads read of their bbox head besides (box decoding, post-processing, the
    class count) is one explicit property or method each, taken from the predicting head; no
    other name is forwarded, so a name mmdet starts reading fails with ``AttributeError``
    (``tests/test_prm_init.py`` scans mmdet's RoI heads for the names they read).
    """

    def __init__(self, cfgs: Sequence[dict], field: str, train_cfgs=None,
                 train_field: str = 'train_cfg.rcnn') -> None:
        if not isinstance(cfgs, (list, tuple)) or not cfgs:
            raise InputError(f'{field} must be a non-empty list of bbox head configs')
        for i, cfg in enumerate(cfgs):
            if MODELS.get(cfg.get('type')) is None:
                raise InputError(f'{field}[{i}].type: unknown bbox head type {cfg.get("type")!r}')
        super().__init__([MODELS.build(cfg) for cfg in cfgs])
        if len({head.num_classes for head in self}) > 1:
            raise InputError(f'{field}: all heads must have the same num_classes, got '
                             f'{[head.num_classes for head in self]}')
        reg_index = -1
        if train_cfgs:
            check_rcnn_cfgs(train_cfgs, len(self), train_field)
            fractions = [cfg['sampler']['pos_fraction'] for cfg in train_cfgs]
            reg_index = fractions.index(max(fractions))
        # Saved with the weights, so inference without a train_cfg knows the regressing head.
        self.register_buffer('reg_index', torch.tensor(reg_index))
        self.test_head = None

    @property
    def predict_index(self) -> int:
        """``test_head`` when set, else the regressing head (largest positive fraction)."""
        if self.test_head is not None:
            return self.test_head
        if self.reg_index < 0:
            raise RuntimeError('parallel bbox heads do not know which head regresses boxes: '
                               'build them with train_cfg.rcnn or load a checkpoint')
        return int(self.reg_index)

    @property
    def predicting_head(self) -> nn.Module:
        return self[self.predict_index]

    # What mmdet's RoI heads read of a bbox head at test time, from the predicting head.
    @property
    def num_classes(self) -> int:
        return self.predicting_head.num_classes

    @property
    def predict_box_type(self) -> str:
        return self.predicting_head.predict_box_type

    @property
    def custom_activation(self) -> bool:
        return self.predicting_head.custom_activation

    @property
    def loss_cls(self) -> nn.Module:
        return self.predicting_head.loss_cls

    def bbox_pred_split(self, bbox_pred: Tensor, num_proposals_per_img: Sequence[int]) -> tuple:
        return self.predicting_head.bbox_pred_split(bbox_pred, num_proposals_per_img)

    def predict_by_feat(self, *args, **kwargs) -> InstanceList:
        return self.predicting_head.predict_by_feat(*args, **kwargs)

    def regress_by_class(self, priors: Tensor, label: Tensor, bbox_pred: Tensor,
                         img_meta: dict) -> Tensor:
        return self.predicting_head.regress_by_class(priors, label, bbox_pred, img_meta)

    def forward(self, feats: Tensor) -> Tuple[Tensor, Tensor]:
        if self.test_head is not None:
            return self[self.test_head](feats)
        outs = [head(feats) for head in self]
        return torch.stack([cls for cls, _ in outs]).mean(0), outs[self.predict_index][1]

    def loss(self, roi_feats: Callable[[Tensor], Tensor], sampling_results: List[list],
             train_cfgs) -> Tuple[dict, List[dict]]:
        """Losses of every head on its own sampled RoIs, named ``h{k}.{loss}``, and per head
        the outputs a cascade needs to refine boxes. Each distinct RoI is pooled once."""
        rois = [bbox2roi([res.priors for res in per_head]) for per_head in sampling_results]
        unique, inverse = torch.unique(torch.cat(rois), dim=0, return_inverse=True)
        feats = roi_feats(unique)[inverse].split([len(r) for r in rois])
        losses, outputs = {}, []
        for k, head in enumerate(self):
            cls_score, bbox_pred = head(feats[k])
            out = head.loss_and_target(cls_score, bbox_pred, rois[k], sampling_results[k],
                                       train_cfgs[k])
            losses.update({f'h{k}.{name}': value for name, value in out['loss_bbox'].items()})
            outputs.append(dict(rois=rois[k], cls_score=cls_score, bbox_pred=bbox_pred,
                                bbox_targets=out['bbox_targets']))
        return losses, outputs


def build_samplers(train_cfgs, context) -> tuple:
    """Assigners and samplers of one stage's heads (validated with the heads), and whether the
    assignment can be shared."""
    assigners = [TASK_UTILS.build(cfg['assigner']) for cfg in train_cfgs]
    samplers = [
        TASK_UTILS.build(cfg['sampler'], default_args=dict(context=context))
        for cfg in train_cfgs
    ]
    share = all(cfg['assigner'] == train_cfgs[0]['assigner'] for cfg in train_cfgs)
    return assigners, samplers, share


def sample_per_head(assigners, samplers, share_assignment: bool, x: Tuple[Tensor],
                    results_list: InstanceList, batch_data_samples: SampleList) -> List[list]:
    """Per head, per image: the sampling result of that head's sampler on the same proposals."""
    gts, gts_ignore, _ = unpack_gt_instances(batch_data_samples)
    sampled = [[] for _ in samplers]
    for i, results in enumerate(results_list):
        results.priors = results.pop('bboxes')
        feats = [lvl[i][None] for lvl in x]
        assign_result = None
        for k, (assigner, sampler) in enumerate(zip(assigners, samplers)):
            if assign_result is None or not share_assignment:
                assign_result = assigner.assign(results, gts[i], gts_ignore[i])
            # Samplers add the GTs to the assignment in place: each gets its own copy.
            sampled[k].append(
                sampler.sample(copy.copy(assign_result), results, gts[i], feats=feats))
    return sampled


class HeadPredictions:
    """With ``predict_each_head=True``, ``predict`` also predicts with every head alone on the
    same backbone features and proposals (the heads' RoI passes and NMS are repeated, the
    backbone and RPN are not) and puts head i's boxes in ``pred_instances_h{i}`` of each data
    sample; ``GTCountSubsetMetric`` reports their AP as ``h{i}/bbox_mAP`` (Table 1's columns)."""

    def predict(self, x, rpn_results_list: InstanceList, batch_data_samples: SampleList,
                rescale: bool = False) -> InstanceList:
        results = super().predict(x, rpn_results_list, batch_data_samples, rescale)
        if not self.predict_each_head or self.test_head is not None:
            return results
        metas = [sample.metainfo for sample in batch_data_samples]
        for i in range(self.num_heads):
            self.test_head = i
            try:
                per_head = self.predict_bbox(x, metas, rpn_results_list, self.test_cfg,
                                             rescale=rescale)
            finally:
                self.test_head = None
            for sample, result in zip(batch_data_samples, per_head):
                sample.set_field(result, f'pred_instances_h{i}')
        return results


@MODELS.register_module()
class ParallelRoIHead(HeadPredictions, StandardRoIHead):
    """RoI head with parallel bbox heads, each trained with its own sampling ratio.

    Args:
        bbox_head: a list of bbox head configs (``Shared2FCBBoxHead`` in the paper).
        test_head: ``None`` predicts with the ensemble; an index predicts with that head alone
            (its own logits and boxes), as in Table 1's per-module columns.
        predict_each_head: also predict with each head alone, see ``HeadPredictions``.
        train_cfg: ``model.train_cfg.rcnn``, a list with one ``assigner``/``sampler`` config per
            head; the head with the largest ``sampler.pos_fraction`` regresses boxes at test
            time (ties: the first).
        mask_head: optional (Mask R-CNN with PRM). It needs its own ``mask_roi_extractor``
            and trains on the positives sampled for the regressing head, with that head's
            ``train_cfg.rcnn`` entry (``mask_size``): one mask head, fed like Mask R-CNN's.
    """

    def __init__(self, bbox_head: List[ConfigType], test_head=None, mask_head=None,
                 mask_roi_extractor=None, predict_each_head: bool = False, **kwargs) -> None:
        if mask_head is not None and mask_roi_extractor is None:
            raise InputError('roi_head.mask_roi_extractor: ParallelRoIHead needs one for its '
                             'mask_head (the bbox heads do not share RoI features with it)')
        super().__init__(bbox_head=bbox_head, mask_head=mask_head,
                         mask_roi_extractor=mask_roi_extractor, **kwargs)
        self.test_head = test_head
        self.predict_each_head = predict_each_head
        if self.with_mask and self.train_cfg:
            reg = int(self.bbox_head.reg_index)
            if 'mask_size' not in self.train_cfg[reg]:
                raise InputError(f'train_cfg.rcnn[{reg}].mask_size: the mask head trains with '
                                 'the regressing head\'s entry, which has no mask_size')

    @property
    def num_heads(self) -> int:
        return len(self.bbox_head)

    @property
    def test_head(self):
        return self.bbox_head.test_head

    @test_head.setter
    def test_head(self, index) -> None:
        if index is not None and index not in range(len(self.bbox_head)):
            raise InputError(f'roi_head.test_head must be None or a head index in '
                             f'[0, {len(self.bbox_head)}), got {index!r}')
        self.bbox_head.test_head = index

    def init_bbox_head(self, bbox_roi_extractor: ConfigType,
                       bbox_head: List[ConfigType]) -> None:
        self.bbox_roi_extractor = MODELS.build(bbox_roi_extractor)
        self.bbox_head = ParallelBBoxHeads(bbox_head, 'roi_head.bbox_head', self.train_cfg)

    def init_assigner_sampler(self) -> None:
        self.bbox_assigner = self.bbox_sampler = None
        if self.train_cfg:
            self.bbox_assigner, self.bbox_sampler, self.share_assignment = build_samplers(
                self.train_cfg, self)

    def _roi_feats(self, x: Tuple[Tensor], rois: Tensor) -> Tensor:
        feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        return self.shared_head(feats) if self.with_shared_head else feats

    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
             batch_data_samples: SampleList) -> dict:
        sampled = sample_per_head(self.bbox_assigner, self.bbox_sampler, self.share_assignment,
                                  x, rpn_results_list, batch_data_samples)
        losses, _ = self.bbox_head.loss(lambda rois: self._roi_feats(x, rois), sampled,
                                        self.train_cfg)
        if self.with_mask:
            reg = int(self.bbox_head.reg_index)
            pos_rois = bbox2roi([res.pos_priors for res in sampled[reg]])
            mask_preds = self._mask_forward(x, pos_rois)['mask_preds']
            losses.update(self.mask_head.loss_and_target(
                mask_preds, sampled[reg], unpack_gt_instances(batch_data_samples)[0],
                self.train_cfg[reg])['loss_mask'])
        return losses
