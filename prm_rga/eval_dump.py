"""Per-proposal evaluation dumps behind Fig. 6 (score distributions of the PRM heads) and
Fig. 1b (positive RPN proposals vs GT count), written after training into
``<work_dir>/artifacts/``:

- ``scores.npz``: ``h{i}`` float32 (N, C+1), the softmax class scores of head i (C =
  background, the last column) on the same N val proposals; ``label`` int64 (N,), the class of
  the GT a proposal overlaps with IoU >= 0.5 (C when none); ``image_id`` int64 (N,).
- ``rpn_pos_vs_gt.csv``: ``image_id,num_gt,num_pos`` per val image: non-ignored GT boxes and
  RPN proposals (all of them, the test-time ``rpn`` config's) with IoU >= 0.5 to one of them.

Heads as in ``prm_rga.telemetry`` (stage 0 of a cascade). Proposals are the RPN's test-time
output, scored by each head directly (no box refinement, no NMS). ``image_id`` is the dataset's
``img_id``, or the image's position in the val set when the ids are not integers (CrowdHuman).
"""
import csv
import os
import os.path as osp

import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook

from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.registry import HOOKS
from mmdet.structures.bbox import bbox2roi, bbox_overlaps
from prm_rga.errors import InputError
from prm_rga_eval.records import atomic_savez
from prm_rga.telemetry import telemetry_heads, unwrap


def stage0_roi_feats(roi_head, x, rois):
    """The RoI features the reported heads take (stage 0's extractor for cascades)."""
    extractor = roi_head.bbox_roi_extractor
    if isinstance(roi_head, CascadeRoIHead):
        extractor = extractor[0]
    feats = extractor(x[:extractor.num_inputs], rois)
    return roi_head.shared_head(feats) if roi_head.with_shared_head else feats


def val_ground_truth(dataset):
    """img_id -> (image_id for the artifacts, GT boxes (n, 4) xyxy, labels (n,)), original
    image coordinates, ignore regions / crowd boxes left out."""
    gts = {}
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        boxes = [inst['bbox'] for inst in info['instances'] if not inst.get('ignore_flag', 0)]
        labels = [inst['bbox_label'] for inst in info['instances']
                  if not inst.get('ignore_flag', 0)]
        img_id = info['img_id']
        gts[img_id] = (img_id if isinstance(img_id, (int, np.integer)) else index,
                       torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                       torch.tensor(labels, dtype=torch.int64))
    return gts


@HOOKS.register_module()
class EvalDumpHook(Hook):
    """Writes ``scores.npz`` and ``rpn_pos_vs_gt.csv`` (module doc) after training, from one
    pass of backbone, RPN and the heads' RoI stage over the val set.

    Args:
        max_images: score the proposals of the first ``max_images`` val images only (None: all);
            the CSV always covers every image.
        max_per_image: score each image's ``max_per_image`` top RPN proposals (None: all). At
            COCO scale all proposals of all images of both heads are 3 GB: the paper configs
            keep 500 images x 300 proposals.
    """

    priority = 'LOW'

    def __init__(self, max_images=None, max_per_image=None, iou_thr: float = 0.5):
        for name, value in (('max_images', max_images), ('max_per_image', max_per_image)):
            if value is not None and not (isinstance(value, int) and value > 0):
                raise InputError(f'EvalDumpHook.{name} must be None or a positive integer, '
                                 f'got {value!r}')
        self.max_images = max_images
        self.max_per_image = max_per_image
        self.iou_thr = iou_thr

    @master_only
    def after_train(self, runner) -> None:
        if runner.val_loop is None:
            runner.logger.warning('EvalDumpHook: no val set configured, nothing dumped')
            return
        out_dir = osp.join(runner.work_dir, 'artifacts')
        os.makedirs(out_dir, exist_ok=True)
        scores, rows = self.dump(unwrap(runner.model), runner.val_loop.dataloader)
        atomic_savez(osp.join(out_dir, 'scores.npz'), scores)
        _atomic_csv(osp.join(out_dir, 'rpn_pos_vs_gt.csv'), ('image_id', 'num_gt', 'num_pos'),
                    rows)
        runner.logger.info(f'EvalDumpHook: wrote scores.npz ({len(scores["label"])} proposals) '
                           f'and rpn_pos_vs_gt.csv ({len(rows)} images) to {out_dir}')

    @torch.no_grad()
    def dump(self, model, dataloader):
        """(scores.npz arrays, CSV rows) of ``model`` in eval mode on ``dataloader``'s images."""
        was_training = model.training
        model.eval()
        try:
            return self._dump(model, dataloader)
        finally:
            model.train(was_training)

    def _dump(self, model, dataloader):
        gts = val_ground_truth(dataloader.dataset)
        heads = telemetry_heads(model.roi_head)
        background = heads[0].num_classes
        rows, per_head, labels, image_ids = [], [[] for _ in heads], [], []
        for batch in dataloader:
            data = model.data_preprocessor(batch, False)
            x = model.extract_feat(data['inputs'])
            proposals = model.rpn_head.predict(x, data['data_samples'], rescale=False)
            scored = []
            for sample, props in zip(data['data_samples'], proposals):
                image_id, gt_boxes, gt_labels = gts[sample.img_id]
                gt_boxes, gt_labels = gt_boxes.to(x[0].device), gt_labels.to(x[0].device)
                scale = props.bboxes.new_tensor(sample.scale_factor).repeat(2)
                iou = bbox_overlaps(props.bboxes / scale, gt_boxes)
                if len(gt_boxes):
                    max_iou, nearest = iou.max(1)
                else:
                    max_iou = iou.new_zeros(len(props))
                    nearest = torch.zeros(len(props), dtype=torch.int64, device=iou.device)
                pos = max_iou >= self.iou_thr
                rows.append((image_id, len(gt_boxes), int(pos.sum())))
                if self.max_images is None or len(rows) <= self.max_images:
                    keep = slice(self.max_per_image)
                    scored.append(props.bboxes[keep])
                    label = torch.where(pos, gt_labels[nearest] if len(gt_boxes) else nearest,
                                        background)[keep]
                    labels.append(label.cpu())
                    image_ids.append(torch.full((len(label), ), image_id, dtype=torch.int64))
            if scored:
                feats = stage0_roi_feats(model.roi_head, x, bbox2roi(scored))
                for out, head in zip(per_head, heads):
                    out.append(head(feats)[0].softmax(-1).float().cpu())
        num_cols = background + 1
        scores = {f'h{i}': torch.cat(out).numpy() if out else np.zeros((0, num_cols), np.float32)
                  for i, out in enumerate(per_head)}
        scores['label'] = torch.cat(labels).numpy() if labels else np.zeros(0, np.int64)
        scores['image_id'] = torch.cat(image_ids).numpy() if image_ids else np.zeros(0, np.int64)
        return scores, rows


def _atomic_csv(path, header, rows):
    tmp = path + '.tmp'
    with open(tmp, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)
