# RGA: R-CNN head gradients x lambda(t), lambda0 = 7 annealed to 1 (paper Table 2).
_base_ = './faster-rcnn_tiny_synth.py'
optim_wrapper = dict(type='RGAOptimWrapper', lambda0=7.0, anneal=True)
