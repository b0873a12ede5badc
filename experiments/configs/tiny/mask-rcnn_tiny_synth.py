# Mask R-CNN on the synthetic set's polygon masks (Fig. 5 right: the gradient the bbox head and
# the mask head each send to the backbone). The tiny Faster R-CNN plus a 2-conv, 32-channel
# FCN mask head on 14 px RoIAlign features (the paper's: 4 convs, 256 channels).
_base_ = '../_base_/faster-rcnn_tiny_synth.py'
model = dict(
    type='MaskRCNN',
    roi_head=dict(
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=32,
            featmap_strides=[4, 8, 16, 32],
            finest_scale=16),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=2,
            in_channels=32,
            conv_out_channels=32,
            num_classes=5,
            loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(rcnn=dict(mask_size=28)),
    test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# Box AP as in the base config, plus mask AP (val/segm_mAP).
_val_ann = '{{$PRM_RGA_SYNTH:data/synth}}/annotations/instances_val.json'
val_evaluator = [
    dict(type='GTCountSubsetMetric', ann_file=_val_ann, prefix='val'),
    dict(type='CocoMetric', ann_file=_val_ann, metric='segm', prefix='val')
]
test_evaluator = val_evaluator
