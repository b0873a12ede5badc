# Mask R-CNN with PRM: bbox heads at 1:1 and 1:9; the mask head trains on the 1:1 head's
# positives (the regressing head's).
_base_ = './mask-rcnn_tiny_synth.py'
_head = {{_base_.model.roi_head.bbox_head}}
_rcnn_11 = dict(
    assigner={{_base_.model.train_cfg.rcnn.assigner}},
    sampler=dict(type='RandomSampler', num={{_base_.model.train_cfg.rcnn.sampler.num}}, pos_fraction=1 / 2, neg_pos_ub=-1,
                 add_gt_as_proposals=True),
    mask_size=28,
    pos_weight=-1,
    debug=False)
_rcnn_19 = dict(_rcnn_11, sampler=dict(_rcnn_11['sampler'], pos_fraction=1 / 10))
model = dict(
    roi_head=dict(type='ParallelRoIHead', bbox_head=[_head, _head], predict_each_head=True),
    train_cfg=dict(rcnn=[_rcnn_11, _rcnn_19]))
