# RGA (Table 2): R-CNN head gradients x lambda(t), lambda0 = 7 annealed linearly to 1.
_base_ = './faster-rcnn_r50_fpn_1x_coco.py'
optim_wrapper = dict(type='RGAOptimWrapper', lambda0=7.0, anneal=True)
