# Mask R-CNN R50-FPN 1x (Fig. 5 right: gradients of the bbox head vs the mask head on
# Block4.Conv1): mmdet's model on the paper's COCO setting, loading masks, with segm AP too.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', '../_base_/coco_paper.py']
# Trained as mmdet 1.x, the paper's framework, did (_base_/coco_paper.py, docs/fidelity.md).
model = {{_base_.mmdet1x_model}}

data_root = '{{$PRM_RGA_COCO:data/coco}}/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='GTCountSubsetMetric', ann_file=data_root + 'annotations/instances_val2017.json',
         prefix='val'),
    dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val2017.json',
         metric='segm', prefix='val')
]
test_evaluator = val_evaluator
