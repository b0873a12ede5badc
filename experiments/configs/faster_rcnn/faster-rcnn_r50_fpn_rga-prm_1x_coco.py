# RGA + PRM (Table 2): 38.1 AP in the paper against the baseline's 36.1.
_base_ = './faster-rcnn_r50_fpn_prm_1x_coco.py'
optim_wrapper = dict(type='RGAOptimWrapper', lambda0=7.0, anneal=True)
