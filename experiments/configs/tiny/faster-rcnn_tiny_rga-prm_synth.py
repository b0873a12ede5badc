# RGA + PRM: the paper's full method (Table 2, "w/ RGA+PRM").
_base_ = './faster-rcnn_tiny_prm_synth.py'
optim_wrapper = dict(type='RGAOptimWrapper', lambda0=7.0, anneal=True)
