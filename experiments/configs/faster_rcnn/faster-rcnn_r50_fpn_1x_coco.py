# The paper's baseline (Table 2, row 1): Faster R-CNN R50-FPN with RoIAlign, 512 RoIs at 1:3
# (soft sampling), SGD lr 0.02 for 16 images (8 GPUs x 2), 12 epochs with steps at 8 and 11.
# The backbone starts from torchvision's ImageNet ResNet-50 (mmdet's init_cfg); without network
# access put the file in the torch hub cache or override init_cfg.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['prm_rga'], allow_failed_imports=False)

data_root = '{{$PRM_RGA_COCO:data/coco}}/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='GTCountSubsetMetric',
                     ann_file=data_root + 'annotations/instances_val2017.json', prefix='val')
test_evaluator = val_evaluator
custom_hooks = [
    dict(type='FiniteLossHook', interval=50),
    dict(type='RoITelemetryHook'),
    dict(type='GradNormHook', interval=50),
    dict(type='EvalDumpHook', max_images=500, max_per_image=300)
]
