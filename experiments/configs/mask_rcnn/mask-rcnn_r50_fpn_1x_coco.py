# Mask R-CNN R50-FPN 1x (Fig. 5 right: gradients of the bbox head vs the mask head on
# Block4.Conv1), mmdet's config on the COCO at data/coco (or PRM_RGA_COCO).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['prm_rga'], allow_failed_imports=False)

data_root = '{{$PRM_RGA_COCO:data/coco}}/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='GTCountSubsetMetric', ann_file=data_root + 'annotations/instances_val2017.json',
         prefix='val'),
    dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val2017.json',
         metric='segm', prefix='val')
]
test_evaluator = val_evaluator
custom_hooks = [
    dict(type='FiniteLossHook', interval=50),
    dict(type='RoITelemetryHook'),
    dict(type='GradNormHook', interval=50),
    dict(type='EvalDumpHook', max_images=500, max_per_image=300)
]
