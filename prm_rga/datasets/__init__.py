"""Datasets: the synthetic embedded default and CrowdHuman's .odgt format."""
from prm_rga.datasets.crowdhuman import CrowdHumanDataset
from prm_rga.datasets.synth import SYNTH_CLASSES, make_synth

__all__ = ['CrowdHumanDataset', 'SYNTH_CLASSES', 'make_synth']
