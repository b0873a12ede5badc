"""Evaluation beyond mmdet's: COCO AP per GT-count subset, and CrowdHuman's mMR / AP50."""
from prm_rga.metrics.crowdhuman import CrowdHumanMMRMetric, crowdhuman_mmr, load_odgt
from prm_rga.metrics.gt_count import GTCountSubsetMetric, gt_count_subset_ap

__all__ = ['CrowdHumanMMRMetric', 'GTCountSubsetMetric', 'crowdhuman_mmr', 'gt_count_subset_ap',
           'load_odgt']
