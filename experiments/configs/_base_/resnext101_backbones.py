# ResNeXt-101 backbones of Tables 2 and 3, as variables for `model.backbone` in child configs
# (one config can inherit these and a model config without a duplicate `model` key).
resnext101_32x4d = dict(
    type='ResNeXt',
    depth=101,
    groups=32,
    base_width=4,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    frozen_stages=1,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=True,
    style='pytorch',
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_32x4d'))
resnext101_64x4d = dict(
    resnext101_32x4d,
    groups=64,
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_64x4d'))
