"""``GTCountSubsetMetric``: the GT-count subset AP of ``prm_rga_eval.gt_count`` as an mmdet
metric."""
import contextlib
import io
import os.path as osp
import tempfile

from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS
from pycocotools.coco import COCO

from prm_rga.errors import InputError
from prm_rga_eval.gt_count import AP_FIELDS, DEFAULT_RANGES, check_ranges, gt_count_subset_ap


@METRICS.register_module()
class GTCountSubsetMetric(CocoMetric):
    """Box AP overall and per GT-count subset, as an mmengine metric.

    Config: ``dict(type='GTCountSubsetMetric', ann_file=..., ranges=[[1, 3], [4, 7], [8, None]])``.
    Keys: ``bbox_mAP``, ``bbox_mAP_50``, ..., ``bbox_mAP_l`` over all images of the annotation
    file, and ``gt1-3/bbox_mAP`` etc. per subset. mmengine prefixes them with ``prefix``,
    by default ``coco`` as mmdet's CocoMetric (``coco/bbox_mAP``, ``coco/gt8-inf/bbox_mAP``),
    so it drops in for CocoMetric (e.g. ``save_best='coco/bbox_mAP'``); pass ``prefix='val'``
    for the MLflow names ``val/bbox_mAP``, ``val/gt1-3/bbox_mAP``. Values are unrounded
    fractions from pycocotools' default parameters (maxDets 1/10/100); an empty subset gives
    -1. Without ``ann_file`` the GT is built from the dataset's instances, as CocoMetric does.

    Per-head AP: when the predictions carry ``pred_instances_h{i}`` (a PRM RoI head built with
    ``predict_each_head=True``), the same keys are reported per head under ``h{i}/``
    (``h0/bbox_mAP``, ``h0/gt1-3/bbox_mAP``, ...), one more ``COCOeval.evaluate()`` per head.
    """

    def __init__(self, ann_file=None, ranges=DEFAULT_RANGES, outfile_prefix=None,
                 collect_device='cpu', prefix=None):
        if ann_file is not None and not osp.isfile(ann_file):
            raise InputError(f'{ann_file}: no such COCO annotation file '
                             '(GTCountSubsetMetric.ann_file)')
        with contextlib.redirect_stdout(io.StringIO()):
            super().__init__(ann_file=ann_file, metric='bbox', outfile_prefix=outfile_prefix,
                             collect_device=collect_device, prefix=prefix)
        self.ranges = check_ranges(ranges)
        self.last_record = None

    def process(self, data_batch, data_samples):
        super().process(data_batch, data_samples)
        for (_, result), sample in zip(self.results[-len(data_samples):], data_samples):
            num_heads = sum(key.startswith('pred_instances_h') for key in sample)
            result['heads'] = [{k: sample[f'pred_instances_h{i}'][k].cpu().numpy()
                                for k in ('bboxes', 'scores', 'labels')}
                               for i in range(num_heads)]

    def compute_metrics(self, results):
        gts, preds = zip(*results)
        if self._coco_api is None:
            with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
                prefix = self.outfile_prefix or osp.join(tmp, 'results')
                self._coco_api = COCO(self.gt_to_coco_json(gts, prefix))
        if self.cat_ids is None:
            self.cat_ids = self._coco_api.getCatIds(catNms=list(self.dataset_meta['classes']))
        img_ids = [p['img_id'] for p in preds]
        out = self._subset_metrics(preds, img_ids)
        num_heads = min(len(p.get('heads', ())) for p in preds)
        sources = {'model': preds}
        for i in range(num_heads):
            sources[f'h{i}'] = [p['heads'][i] for p in preds]
            out.update({f'h{i}/{k}': v for k, v in
                        self._subset_metrics(sources[f'h{i}'], img_ids).items()})
        # what EvalRecordHook writes: the predictions behind these numbers, per image
        self.last_record = dict(coco=self._coco_api, cat_ids=self.cat_ids, img_ids=img_ids,
                                sources=sources)
        return out

    def _subset_metrics(self, preds, img_ids):
        dets = [dict(image_id=img_id, category_id=self.cat_ids[label],
                     bbox=self.xyxy2xywh(box), score=float(score))
                for p, img_id in zip(preds, img_ids)
                for box, score, label in zip(p['bboxes'], p['scores'], p['labels'])]
        res = gt_count_subset_ap(self._coco_api, dets, self.ranges)
        out = {k: res['all'][k] for k in AP_FIELDS}
        for name, stats in res.items():
            if name != 'all':
                out.update({f'{name}/{k}': stats[k] for k in AP_FIELDS})
        return out
