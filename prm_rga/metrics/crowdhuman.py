"""``CrowdHumanMMRMetric``: the benchmark's mMR / AP50 of ``prm_rga_eval.crowdhuman`` as an
mmengine metric."""
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric

from prm_rga_eval.crowdhuman import crowdhuman_mmr, load_odgt


@METRICS.register_module()
class CrowdHumanMMRMetric(BaseMetric):
    """CrowdHuman mMR / AP50 / recall of class-0 predictions against an ``.odgt`` gt file.

    Config: ``dict(type='CrowdHumanMMRMetric', ann_file='annotation_val.odgt')``. Every record of
    ``ann_file`` counts as an image (one without predictions has missed all its persons), as in
    the benchmark. Each image's detection record carries the image size (``ori_shape``), so
    boxes are clipped as the benchmark's toolkit does. Keys ``mMR``, ``AP50``, ``recall``
    (fractions), prefixed by ``prefix``, by default ``crowd_human`` as mmdet's metric
    (``crowd_human/mMR``); pass ``prefix='val'`` for the MLflow names ``val/mMR``, ``val/AP50``.

    A name of our own, beside mmdet's ``CrowdHumanMetric`` (left as mmdet registers it, so its
    CrowdDet configs are unchanged); it computes AP and MR as that one does (not JI), see the
    module doc.
    """

    default_prefix = 'crowd_human'

    def __init__(self, ann_file, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.gt_records = load_odgt(ann_file)

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            pred = sample['pred_instances']
            keep = pred['labels'] == 0
            boxes = pred['bboxes'][keep].cpu().numpy().tolist()
            scores = pred['scores'][keep].cpu().numpy().tolist()
            height, width = sample['ori_shape'][:2]
            self.results.append(dict(
                ID=sample['img_id'], width=width, height=height,
                dtboxes=[dict(box=[x1, y1, x2 - x1, y2 - y1], score=s)
                         for (x1, y1, x2, y2), s in zip(boxes, scores)]))

    def compute_metrics(self, results):
        # what EvalRecordHook writes (crowd_records.npz): the detections behind these numbers
        self.last_record = dict(gt_records=self.gt_records, det_records=results)
        return crowdhuman_mmr(self.gt_records, results)
