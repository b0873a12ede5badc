# The paper's R50-FPN RGA+PRM detector (Table 2) on the synthetic set at COCO image scale, to
# check a GPU set-up end to end without COCO or ImageNet weights: throughput, memory, losses and
# a val mAP. 8 images per GPU (lr scaled linearly from the paper's 0.02 for 16), 2 epochs of
# 250 iterations, trained from scratch (BN trained, no frozen stage). Not a paper number.
_base_ = './faster-rcnn_r50_fpn_rga-prm_1x_coco.py'

data_root = '{{$PRM_RGA_SYNTH_512:data/synth512}}/'
synth_data = dict(out_dir=data_root, seed=0, num_train=2000, num_val=200, image_size=512)
classes = ('circle', 'square', 'triangle', 'cross', 'star')
_head = dict(
    type='Shared2FCBBoxHead',
    in_channels=256,
    fc_out_channels=1024,
    roi_feat_size=7,
    num_classes=len(classes),
    bbox_coder=dict(
        type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
        target_stds=[0.1, 0.1, 0.2, 0.2]),
    reg_class_agnostic=False,
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
model = dict(
    backbone=dict(init_cfg=None, frozen_stages=-1, norm_eval=False),
    roi_head=dict(bbox_head=[_head, _head]))

_data = dict(data_root=data_root, metainfo=dict(classes=classes))
train_dataloader = dict(
    batch_size=8, num_workers=8,
    dataset=dict(_data, ann_file='annotations/instances_train.json', data_prefix=dict(img='train/')))
val_dataloader = dict(
    batch_size=8, num_workers=8,
    dataset=dict(_data, ann_file='annotations/instances_val.json', data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=2, by_epoch=True, milestones=[], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(logger=dict(interval=25))
