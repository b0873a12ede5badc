"""Evaluation beyond mmdet's: COCO AP per GT-count subset, CrowdHuman's mMR / AP50, and the
paired bootstrap of both over the val images."""
from prm_rga.metrics.bootstrap import (draw_resamples, paired_bootstrap_ap,
                                       paired_bootstrap_mmr, percentile_interval)
from prm_rga.metrics.crowdhuman import CrowdHumanMMRMetric, crowdhuman_mmr, load_odgt
from prm_rga.metrics.gt_count import GTCountSubsetMetric, gt_count_subset_ap

__all__ = ['CrowdHumanMMRMetric', 'GTCountSubsetMetric', 'crowdhuman_mmr', 'draw_resamples',
           'gt_count_subset_ap', 'load_odgt', 'paired_bootstrap_ap', 'paired_bootstrap_mmr',
           'percentile_interval']
