# Cascade R-CNN with RGA + PRM (Table 2): every stage holds heads trained at 1:1 and 1:9.
_base_ = './cascade-rcnn_tiny_synth.py'
model = dict(
    roi_head=dict(type='ParallelCascadeRoIHead', bbox_head={{_base_._prm_stage_heads}},
                  predict_each_head=True),
    train_cfg=dict(rcnn={{_base_._prm_stage_rcnn}}))
optim_wrapper = dict(type='RGAOptimWrapper', lambda0=7.0, anneal=True)
