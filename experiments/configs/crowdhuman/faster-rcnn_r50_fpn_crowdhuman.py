# Table 7: Faster R-CNN R50-FPN on CrowdHuman full-body boxes, as the CrowdHuman paper's
# baseline (anchor ratios 1:1, 2:1, 3:1 for upright people, 800 px short side up to 1400,
# 30 epochs with steps at 24 and 27 for 16 images), evaluated with the benchmark's mMR and AP50.
# Data: $PRM_RGA_CROWDHUMAN (default data/crowdhuman) with annotation_{train,val}.odgt and Images/.
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py', 'mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['prm_rga'], allow_failed_imports=False)

data_root = '{{$PRM_RGA_CROWDHUMAN:data/crowdhuman}}/'
model = dict(
    # As the COCO configs: trained as mmdet 1.x did (docs/fidelity.md).
    rpn_head=dict(anchor_generator=dict(ratios=[1.0, 2.0, 3.0]),
                  loss_bbox=dict(_delete_=True, type='SmoothL1Loss', beta=1 / 9, loss_weight=1.0)),
    roi_head=dict(bbox_head=dict(
        num_classes=1,
        loss_bbox=dict(_delete_=True, type='SmoothL1Loss', beta=1.0, loss_weight=1.0))),
    train_cfg=dict(rpn=dict(allowed_border=0), rpn_proposal=dict(max_per_img=2000)),
    test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=300)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1400, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1400, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='CrowdHumanODGTDataset',
        data_root=data_root,
        ann_file='annotation_train.odgt',
        data_prefix=dict(img='Images/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CrowdHumanODGTDataset',
        data_root=data_root,
        ann_file='annotation_val.odgt',
        data_prefix=dict(img='Images/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CrowdHumanMMRMetric', ann_file=data_root + 'annotation_val.odgt',
                     prefix='val')
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0, end=800),
    dict(type='MultiStepLR', begin=0, end=30, by_epoch=True, milestones=[24, 27], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
custom_hooks = [dict(type='FiniteLossHook', interval=50)]
