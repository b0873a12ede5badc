# Cascade R-CNN baseline (Table 2): three stages at IoU 0.5 / 0.6 / 0.7, class-agnostic boxes.
_base_ = './faster-rcnn_tiny_synth.py'
_head = dict(
    type='Shared2FCBBoxHead',
    in_channels=32,
    fc_out_channels=256,
    roi_feat_size=7,
    num_classes=5,
    reg_class_agnostic=True,
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
_stage_heads = [
    dict(_head, bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                                target_stds=stds)) for stds in _stds
]
_stage_rcnn = [
    dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou,
                       match_low_quality=False, ignore_iof_thr=-1),
         sampler=dict(type='RandomSampler', num={{_base_.model.train_cfg.rcnn.sampler.num}}, pos_fraction=0.25, neg_pos_ub=-1,
                      add_gt_as_proposals=True),
         pos_weight=-1,
         debug=False) for iou in (0.5, 0.6, 0.7)
]
# PRM's heads per stage, 1:1 and 1:9, for the *_prm configs (a config cannot compute on its
# base's values, so they are derived here, next to what they derive from).
_prm_stage_heads = [[head, head] for head in _stage_heads]
_prm_stage_rcnn = [[
    dict(rcnn, sampler=dict(rcnn['sampler'], pos_fraction=fraction))
    for fraction in (1 / 2, 1 / 10)
] for rcnn in _stage_rcnn]

model = dict(
    type='CascadeRCNN',
    roi_head=dict(
        _delete_=True,
        type='CascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor={{_base_.model.roi_head.bbox_roi_extractor}},
        bbox_head=_stage_heads),
    train_cfg=dict(rcnn=_stage_rcnn))
