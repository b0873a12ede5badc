# Table 7 on the embedded default: the tiny Faster R-CNN on the synthetic crowd of people in
# CrowdHuman's .odgt format (ignore regions included), one class, anchors for upright people,
# evaluated with the benchmark's mMR and AP50.
_base_ = './faster-rcnn_tiny_synth.py'

data_root = '{{$PRM_RGA_SYNTH_CROWD:data/synth-crowd}}/'
synth_data = dict(out_dir=data_root, seed=0, num_train=800, num_val=200, image_size=128,
                  crowd=True)
model = dict(
    rpn_head=dict(anchor_generator=dict(ratios=[1.0, 2.0, 3.0])),
    roi_head=dict(bbox_head=dict(num_classes=1)),
    test_cfg=dict(rcnn=dict(score_thr=0.0)))
_dataset = dict(
    _delete_=True,
    type='CrowdHumanODGTDataset',
    data_root=data_root,
    data_prefix=dict(img='Images/'),
    img_ext='png')
train_dataloader = dict(
    dataset=dict(_dataset, ann_file='annotation_train.odgt', filter_cfg=dict(filter_empty_gt=True),
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_dataset, ann_file='annotation_val.odgt', test_mode=True,
                 pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CrowdHumanMMRMetric',
                     ann_file=data_root + 'annotation_val.odgt', prefix='val')
test_evaluator = val_evaluator
