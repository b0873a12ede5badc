# Baseline: one R-CNN head, 128 RoIs per image at 1:3 (soft sampling), SGD
# clipped at 35 as every config here (docs/fidelity.md).
_base_ = '../_base_/faster-rcnn_tiny_synth.py'
