"""Training telemetry behind the paper's figures, written to mmengine's message hub (so the
logger hook hands it to every visualizer backend: JSON, TensorBoard, MLflow).

- ``RoITelemetryHook``: every iteration, per R-CNN head, the sampled positive RoIs per image
  and the training accuracy on positive and on negative RoIs (Fig. 1a, Fig. 3) as
  ``train/num_pos/h{i}``, ``train/acc_pos/h{i}``, ``train/acc_neg/h{i}``, and the share of
  images whose positive candidates exceeded the head's cap ``int(num * pos_fraction)``
  (``train/pos_capped/h{i}``): where it is 0, two sampling ratios draw the same positives.
- ``GradNormHook``: every ``interval`` iterations, the Frobenius norm of the gradient each head's
  loss alone sends to one backbone weight (Block4.Conv1, Fig. 5), and of their sum.

Heads: a ``StandardRoIHead`` has one, ``h0``; ``ParallelRoIHead`` heads are ``h{i}`` in
config order; for (parallel) Cascade R-CNN the heads of stage 0, which see the RPN proposals
as the paper's Faster R-CNN heads do. Neither hook changes training: the first reads what the
bbox heads compute anyway, the second uses ``torch.autograd.grad``, which leaves ``.grad``
alone, on the graph the training step builds (no extra forward).
"""
import re
from collections import defaultdict
from typing import Dict, List

import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import is_model_wrapper
from torch import Tensor

from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.registry import HOOKS
from prm_rga.errors import InputError
from prm_rga.parallel_roi_head import ParallelBBoxHeads

# Loss names of the R-CNN heads: mmdet's ``loss_cls`` / ``s1.loss_bbox`` / ``loss_mask``, ours
# with a head index, ``h0.loss_cls`` / ``s0.h1.loss_bbox``.
LOSS_NAME = re.compile(r'^(?:s(?P<stage>\d+)\.)?(?:h(?P<head>\d+)\.)?loss_\w+$')


def unwrap(model):
    return model.module if is_model_wrapper(model) else model


def telemetry_heads(roi_head) -> list:
    """The bbox heads reported as ``h0, h1, ...`` (stage 0's for cascades)."""
    heads = roi_head.bbox_head
    if isinstance(roi_head, CascadeRoIHead):
        heads = heads[0]
    return list(heads) if isinstance(heads, ParallelBBoxHeads) else [heads]


def telemetry_samplers(roi_head) -> list:
    """The RoI samplers of the heads ``telemetry_heads`` gives, in the same order."""
    samplers = roi_head.bbox_sampler
    if isinstance(roi_head, CascadeRoIHead):
        samplers = samplers[0]
    return list(samplers) if isinstance(samplers, (list, tuple)) else [samplers]


def pos_capped(assign_result, sampler) -> bool:
    """Whether the positive candidates of one image (after the sampler added the GT boxes)
    outnumber the positives the sampler may keep, so it had to drop some."""
    return int((assign_result.gt_inds > 0).sum()) > int(sampler.num * sampler.pos_fraction)


def roi_stats(cls_score: Tensor, labels: Tensor, num_imgs: int,
              num_classes: int) -> Dict[str, float]:
    """Positives per image and accuracy (fraction) on positive / negative RoIs of one head.

    ``labels`` are the bbox targets' labels, background = the head's ``num_classes`` (mmdet's
    convention; a head may have more class channels than ``num_classes + 1``). An accuracy over
    no RoIs is left out (the message hub keeps the previous value).
    """
    pos = labels < num_classes
    correct = cls_score.argmax(1) == labels
    num_pos, num_neg = pos.sum(), (~pos).sum()
    values = torch.stack([num_pos, (correct & pos).sum(), num_neg, (correct & ~pos).sum()])
    num_pos, pos_ok, num_neg, neg_ok = values.tolist()  # one device sync
    stats = {'num_pos': num_pos / num_imgs}
    if num_pos:
        stats['acc_pos'] = pos_ok / num_pos
    if num_neg:
        stats['acc_neg'] = neg_ok / num_neg
    return stats


@HOOKS.register_module()
class RoITelemetryHook(Hook):
    """Logs ``train/num_pos/h{i}``, ``train/acc_pos/h{i}``, ``train/acc_neg/h{i}`` and
    ``train/pos_capped/h{i}`` every iteration.

    The heads' own ``loss_and_target`` (called by every mmdet and prm_rga RoI head in training)
    is wrapped for the run: it already has the class scores and the sampled RoIs' labels, so the
    telemetry costs an argmax and one device sync per head. Each head's sampler is wrapped too:
    only it sees the positive candidates before it subsamples them.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        roi_head = unwrap(runner.model).roi_head
        self._heads, self._samplers = telemetry_heads(roi_head), telemetry_samplers(roi_head)
        self._capped = [[] for _ in self._heads]
        for i, (head, sampler) in enumerate(zip(self._heads, self._samplers)):
            head.loss_and_target = self._recording(head.loss_and_target, i, head.num_classes)
            sampler.sample = self._counting(sampler, self._capped[i])

    def after_train(self, runner) -> None:
        for head, sampler in zip(self._heads, self._samplers):
            del head.loss_and_target, sampler.sample  # back to the classes' methods

    @staticmethod
    def _counting(sampler, capped: list):
        sample = sampler.sample

        def wrapped(assign_result, *args, **kwargs):
            result = sample(assign_result, *args, **kwargs)
            capped.append(pos_capped(assign_result, sampler))
            return result

        return wrapped

    def _recording(self, loss_and_target, index: int, num_classes: int):

        def wrapped(cls_score, bbox_pred, rois, sampling_results, rcnn_train_cfg, **kwargs):
            out = loss_and_target(cls_score, bbox_pred, rois, sampling_results, rcnn_train_cfg,
                                  **kwargs)
            hub = MessageHub.get_current_instance()
            stats = roi_stats(cls_score.detach(), out['bbox_targets'][0], len(sampling_results),
                              num_classes)
            capped = self._capped[index]
            if capped:
                stats['pos_capped'] = sum(capped) / len(capped)
                capped.clear()
            for name, value in stats.items():
                hub.update_scalar(f'train/{name}/h{index}', value)
            return out

        return wrapped


def loss_groups(losses: dict, with_mask: bool) -> Dict[str, List[Tensor]]:
    """The R-CNN loss terms per reported group: ``h{i}`` per bbox head (stage 0 of cascades),
    or ``bbox`` and ``mask`` for a model with a mask head. RPN losses are left out."""
    groups = defaultdict(list)
    for name, value in losses.items():
        match = LOSS_NAME.match(name)
        if 'rpn' in name or match is None or int(match['stage'] or 0) != 0:
            continue
        if with_mask:
            group = 'mask' if name.endswith('loss_mask') else 'bbox'
        else:
            group = f'h{match["head"] or 0}'
        groups[group].extend(value if isinstance(value, (list, tuple)) else [value])
    return dict(groups)


def grad_fnorms(losses: dict, param: Tensor, with_mask: bool,
                loss_scale: float = 1.0) -> Dict[str, float]:
    """Frobenius norm of d(group loss)/d(param) per group and of the gradient of their sum.

    The sum's gradient is the sum of the groups' gradients (linearity), so one
    ``autograd.grad`` per group suffices; the graph is kept for the training step's backward.
    Under AMP the graph holds fp16 activations, whose small gradients underflow unless the loss
    is scaled first: pass the loss scaler's scale, as the training step's own backward uses it.
    A scale that overflows gives no norms (the scaler skips that step and lowers its scale).
    """
    grads = {}
    for group, terms in loss_groups(losses, with_mask).items():
        (grad, ) = torch.autograd.grad(sum(terms) * loss_scale, param, retain_graph=True,
                                       allow_unused=True)
        grads[group] = torch.zeros_like(param) if grad is None else grad.float()
    if not grads:
        return {}
    norms = torch.stack([g.norm() for g in grads.values()] + [sum(grads.values()).norm()])
    norms = norms / loss_scale
    if not torch.isfinite(norms).all():
        return {}
    return dict(zip(list(grads) + ['sum'], norms.tolist()))


@HOOKS.register_module()
class GradNormHook(Hook):
    """Logs ``train/grad_fnorm/{h0,h1,...,sum}`` (Mask R-CNN: ``bbox``, ``mask``, ``sum``) every
    ``interval`` iterations.

    Args:
        interval: iterations between two measurements (each costs one partial backward per
            group).
        param: the backbone weight, by parameter name; the default is Block4.Conv1 of
            ResNet/ResNeXt.

    The per-group losses exist with their graph only inside the model's ``train_step``, between
    ``parse_losses`` and the backward: the hook wraps the model's ``parse_losses`` for the run.
    With an ``AmpOptimWrapper`` the losses are scaled by its loss scaler's current scale before
    differentiating (see ``grad_fnorms``).
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 50, param: str = 'backbone.layer4.0.conv1.weight'):
        if not (isinstance(interval, int) and interval > 0):
            raise InputError(f'GradNormHook.interval must be a positive integer, got {interval!r}')
        self.interval = interval
        self.param_name = param
        self._due = False

    def before_train(self, runner) -> None:
        model = unwrap(runner.model)
        params = dict(model.named_parameters())
        if self.param_name not in params or not params[self.param_name].requires_grad:
            raise InputError(f'GradNormHook.param: {self.param_name!r} is not a trainable '
                             f'parameter of {type(model).__name__}')
        self._model, self._param = model, params[self.param_name]
        self._with_mask = bool(getattr(model.roi_head, 'with_mask', False))
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        parse_losses = model.parse_losses

        def wrapped(losses):
            if self._due:
                hub = MessageHub.get_current_instance()
                scale = 1.0 if scaler is None else float(scaler.get_scale())
                for group, value in grad_fnorms(losses, self._param, self._with_mask,
                                                scale).items():
                    hub.update_scalar(f'train/grad_fnorm/{group}', value)
            return parse_losses(losses)

        model.parse_losses = wrapped

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._due = self.every_n_train_iters(runner, self.interval)

    def after_train(self, runner) -> None:
        del self._model.parse_losses
