# Cascade R-CNN R50-FPN baseline (Table 2): three stages at IoU 0.5 / 0.6 / 0.7, each sampling
# 512 RoIs at 1:3; mmdet's model on the paper's COCO setting.
_base_ = ['mmdet::_base_/models/cascade-rcnn_r50_fpn.py', '../_base_/coco_paper.py']
