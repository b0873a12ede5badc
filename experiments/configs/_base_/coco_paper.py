# COCO 2017 at the paper's settings: mmdet's coco_detection pipeline (1333x800, flip), its 1x
# schedule (SGD lr 0.02 for 16 images, 12 epochs, steps at 8 and 11) and runtime, read from
# data/coco or $PRM_RGA_COCO, with our plugins and the finite-loss check. Detector configs add
# a model (mmdet's `_base_/models/...`), as mmdet's own configs do.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py', 'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['prm_rga'], allow_failed_imports=False)

data_root = '{{$PRM_RGA_COCO:data/coco}}/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
custom_hooks = [dict(type='FiniteLossHook', interval=50)]
