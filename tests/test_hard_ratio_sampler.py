"""Hard sampling (Appendix A): the ratio holds by replicating positives."""
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.models.task_modules.assigners import AssignResult
from prm_rga import HardRatioSampler
from prm_rga.errors import InputError


def make_inputs(num_pos, num_neg=600, num_gts=3):
    gt_inds = torch.cat([torch.randint(1, num_gts + 1, (num_pos, )),
                         torch.zeros(num_neg, dtype=torch.long)])
    gt_inds = gt_inds[torch.randperm(len(gt_inds))]
    labels = torch.where(gt_inds > 0, gt_inds - 1, torch.full_like(gt_inds, -1))
    assign = AssignResult(num_gts, gt_inds, torch.rand(len(gt_inds)), labels)
    boxes = torch.rand(len(gt_inds), 4) * 50
    boxes[:, 2:] += boxes[:, :2] + 1
    gt = InstanceData(bboxes=torch.tensor([[0., 0, 10, 10], [5, 5, 20, 20], [1, 1, 8, 9]])[:num_gts],
                      labels=torch.arange(num_gts))
    return assign, InstanceData(priors=boxes), gt


@pytest.mark.parametrize('num_pos', [0, 5, 100, 400])
@pytest.mark.parametrize('pos_fraction', [0.5, 0.25, 0.125])
def test_requested_ratio_with_replicated_positives(num_pos, pos_fraction):
    torch.manual_seed(num_pos)
    sampler = HardRatioSampler(num=512, pos_fraction=pos_fraction, add_gt_as_proposals=True)
    assign, pred, gt = make_inputs(num_pos)
    res = sampler.sample(assign, pred, gt)
    real_pos = num_pos + len(gt.bboxes)  # the GTs are added as positive proposals
    want = int(512 * pos_fraction)
    assert len(res.pos_inds) == want
    assert len(res.pos_inds) + len(res.neg_inds) == 512
    assert (assign.gt_inds[res.pos_inds] > 0).all()  # the sampler added the GTs to `assign`
    assert (assign.gt_inds[res.neg_inds] == 0).all()
    distinct = len(res.pos_inds.unique())
    assert distinct == min(real_pos, want)  # every real positive is used before any copy
    if real_pos < want:
        assert distinct < len(res.pos_inds)


def test_no_positive_gives_negatives_only():
    sampler = HardRatioSampler(num=64, pos_fraction=0.5, add_gt_as_proposals=False)
    assign, pred, gt = make_inputs(0, num_neg=100)
    res = sampler.sample(assign, pred, gt)
    assert len(res.pos_inds) == 0 and len(res.neg_inds) == 64


@pytest.mark.parametrize('bad', [0, -0.1, 1.5, 'half'])
def test_pos_fraction_out_of_range(bad):
    with pytest.raises(InputError, match='pos_fraction'):
        HardRatioSampler(num=512, pos_fraction=bad)
