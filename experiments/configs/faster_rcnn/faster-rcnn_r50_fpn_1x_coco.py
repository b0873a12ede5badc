# The paper's baseline (Table 2, row 1): Faster R-CNN R50-FPN with RoIAlign, 512 RoIs at 1:3
# (soft sampling), SGD lr 0.02 for 16 images (8 GPUs x 2), 12 epochs with steps at 8 and 11.
# The backbone starts from torchvision's ImageNet ResNet-50 (mmdet's init_cfg), read without
# torchvision or network from $PRM_RGA_PRETRAINED or the torch hub cache (prm_rga/pretrained.py).
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py', '../_base_/coco_paper.py']
# Trained as mmdet 1.x, the paper's framework, did (_base_/coco_paper.py, docs/fidelity.md).
model = {{_base_.mmdet1x_model}}
