# COCO 2017 at the paper's settings: mmdet's coco_detection pipeline (1333x800, flip), its 1x
# schedule (SGD lr 0.02 for 16 images, 12 epochs, steps at 8 and 11) with mmdet 1.x's gradient
# clipping, and runtime, read from data/coco or $PRM_RGA_COCO, with our plugins, the finite-loss
# check and the telemetry. Detector configs add a model (mmdet's `_base_/models/...`), as mmdet's
# own configs do, and mmdet 1.x's 2000 training proposals (docs/fidelity.md).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py', 'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['prm_rga'], allow_failed_imports=False)

data_root = '{{$PRM_RGA_COCO:data/coco}}/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
# mmdet 1.x, the paper's framework, trained where it differs from mmdet 3 in what RGA and PRM act
# on (docs/fidelity.md): every detector clipped at 35 (L2 over all parameters; RGA scales the
# head gradients before it, Appendix B), a warmup from 1/3 of the lr (mmdet 3: 0.001), and for
# the models mmdet 3 changed (Faster and Mask R-CNN, which take `model = {{_base_.mmdet1x_model}}`)
# Smooth L1 box losses, RPN anchors across the image border ignored, 2000 training proposals.
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
mmdet1x_model = dict(
    rpn_head=dict(loss_bbox=dict(_delete_=True, type='SmoothL1Loss', beta=1 / 9, loss_weight=1.0)),
    roi_head=dict(
        bbox_head=dict(loss_bbox=dict(_delete_=True, type='SmoothL1Loss', beta=1.0,
                                      loss_weight=1.0))),
    train_cfg=dict(rpn=dict(allowed_border=0), rpn_proposal=dict(max_per_img=2000)))
# COCO AP overall, on the GT-count subsets (Fig. 2) and per PRM head, named val/... for tracking.
val_evaluator = dict(_delete_=True, type='GTCountSubsetMetric',
                     ann_file=data_root + 'annotations/instances_val2017.json', prefix='val')
test_evaluator = val_evaluator
# Telemetry behind the figures (docs/telemetry.md).
custom_hooks = [
    dict(type='FiniteLossHook', interval=50),
    dict(type='RoITelemetryHook'),
    dict(type='GradNormHook', interval=50),
    dict(type='EvalDumpHook', max_images=500, max_per_image=300)
]
