# Baseline: one R-CNN head, 512 RoIs at 1:3 (soft sampling), plain SGD.
_base_ = '../_base_/faster-rcnn_tiny_synth.py'
