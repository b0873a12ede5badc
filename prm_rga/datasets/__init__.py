"""Datasets: the synthetic embedded default and CrowdHuman's .odgt format."""
from prm_rga.datasets.crowdhuman import CrowdHumanODGTDataset
from prm_rga.datasets.synth import SYNTH_CLASSES, make_synth

__all__ = ['CrowdHumanODGTDataset', 'SYNTH_CLASSES', 'make_synth']
