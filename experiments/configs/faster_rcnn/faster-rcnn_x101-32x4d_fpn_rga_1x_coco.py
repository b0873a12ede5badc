# ResNeXt-101 32x4d backbone (Table 2).
_base_ = ['./faster-rcnn_r50_fpn_rga_1x_coco.py', '../_base_/resnext101_backbones.py']
model = dict(backbone={{_base_.resnext101_32x4d}})
