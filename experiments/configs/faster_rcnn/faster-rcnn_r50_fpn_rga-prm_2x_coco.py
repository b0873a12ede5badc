# The 2x schedule of Table 2: 24 epochs with steps at 16 and 22.
_base_ = './faster-rcnn_r50_fpn_rga-prm_1x_coco.py'
train_cfg = dict(max_epochs=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True, milestones=[16, 22], gamma=0.1)
]
