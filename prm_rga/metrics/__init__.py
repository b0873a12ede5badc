"""Evaluation beyond mmdet's: COCO AP per GT-count subset, CrowdHuman's mMR / AP50, and the
paired bootstrap of both over the val images. The arithmetic lives in ``prm_rga_eval``
(importable without torch); here are its mmdet metrics and its public names."""
from prm_rga.metrics.crowdhuman import CrowdHumanMMRMetric
from prm_rga.metrics.gt_count import GTCountSubsetMetric
from prm_rga_eval.bootstrap import (draw_resamples, paired_bootstrap_ap, paired_bootstrap_mmr,
                                    percentile_interval)
from prm_rga_eval.crowdhuman import crowdhuman_mmr, load_odgt
from prm_rga_eval.gt_count import gt_count_subset_ap

__all__ = ['CrowdHumanMMRMetric', 'GTCountSubsetMetric', 'crowdhuman_mmr', 'draw_resamples',
           'gt_count_subset_ap', 'load_odgt', 'paired_bootstrap_ap', 'paired_bootstrap_mmr',
           'percentile_interval']
