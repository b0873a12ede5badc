# Cascade R-CNN with a ResNeXt-101 64x4d backbone (Table 3).
_base_ = ['./cascade-rcnn_r50_fpn_1x_coco.py', '../_base_/resnext101_backbones.py']
model = dict(backbone={{_base_.resnext101_64x4d}})
