"""'Hard' sampling ratio (paper Appendix A, Table 8): positives are copied until they fill
``num * pos_fraction`` slots, so the ratio holds even when the RPN yields few positives.

mmdet's ``RandomSampler`` is the paper's 'soft' sampling: it keeps every real positive and
fills the rest of the batch with negatives.
"""
import torch
from mmengine.structures import InstanceData

from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import RandomSampler, SamplingResult
from mmdet.registry import TASK_UTILS
from prm_rga.errors import InputError


def check_pos_fraction(pos_fraction, field: str) -> None:
    """Reject a positive fraction that no sampling ratio 1:k can give."""
    if not isinstance(pos_fraction, (int, float)) or not 0 < pos_fraction <= 1:
        raise InputError(f'{field} must be in (0, 1], got {pos_fraction!r}')


@TASK_UTILS.register_module()
class HardRatioSampler(RandomSampler):
    """Samples exactly ``int(num * pos_fraction)`` positives, drawing with replacement when
    there are fewer real ones (each real positive is kept at least once), and fills the rest
    of ``num`` with negatives. With no positive at all the batch is negatives only."""

    def __init__(self, num: int, pos_fraction: float, **kwargs):
        check_pos_fraction(pos_fraction, 'HardRatioSampler.pos_fraction')
        super().__init__(num, pos_fraction, **kwargs)

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData,
               gt_instances: InstanceData, **kwargs) -> SamplingResult:
        priors = pred_instances.priors
        gt_bboxes = gt_instances.bboxes
        gt_flags = priors.new_zeros((priors.shape[0], ), dtype=torch.uint8)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            priors = torch.cat([gt_bboxes, priors], dim=0)
            assign_result.add_gt_(gt_instances.labels)
            gt_flags = torch.cat([gt_flags.new_ones(len(gt_bboxes)), gt_flags])

        num_pos = int(self.num * self.pos_fraction)
        pos_pool = torch.nonzero(assign_result.gt_inds > 0).flatten()
        if len(pos_pool) >= num_pos:
            pos_inds = self.random_choice(pos_pool, num_pos)
        elif len(pos_pool) > 0:
            extra = torch.randint(len(pos_pool), (num_pos - len(pos_pool), ))
            pos_inds = torch.cat([pos_pool, pos_pool[extra.to(pos_pool.device)]])
        else:
            pos_inds = pos_pool
        neg_inds = self._sample_neg(assign_result, self.num - len(pos_inds)).unique()
        return SamplingResult(
            pos_inds=pos_inds,
            neg_inds=neg_inds,
            priors=priors,
            gt_bboxes=gt_bboxes,
            assign_result=assign_result,
            gt_flags=gt_flags)
