"""R-CNN Gradient Annealing (paper Sec. 3.1, Eq. 1 and Appendix B).

The gradient of every R-CNN head parameter is multiplied by λ(t) = λ0 − (λ0 − 1)·t/T after
backward and before gradient clipping and the optimizer step. The wrappers learn which parameters
are R-CNN heads and the iteration counters t, T from ``initialize_count_status``, which mmengine's
Runner calls after loading or resuming a checkpoint: the schedule continues where it stopped.
"""
from typing import Sequence

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmdet.registry import OPTIM_WRAPPERS
from prm_rga.errors import InputError


def rga_lambda(t: int, T: int, lambda0: float, anneal: bool = True) -> float:
    """The magnification factor at iteration t of T (t counts from 0, as in Appendix B)."""
    if not anneal:
        return float(lambda0)
    if T <= 0 or not 0 <= t <= T:
        raise ValueError(f'rga_lambda needs 0 <= t <= T and T > 0, got t={t}, T={T}')
    return lambda0 - (lambda0 - 1.0) * t / T


class RGAMixin:
    """Scales R-CNN head gradients by λ(t) at the start of ``step``, before clipping.

    Args:
        lambda0: initial magnification factor λ0 (≥ 1; 1 switches RGA off).
        anneal: decay λ linearly to 1 over training; ``False`` keeps λ0 constant (Table 4).
        head_prefixes: parameter-name prefixes of the R-CNN modules. The default covers every
            bbox head of a ``StandardRoIHead``, ``ParallelRoIHead`` and the cascade variants, and
            leaves out backbone, neck, RPN and mask head, as the paper's code does.
    """

    def __init__(self, *args, lambda0: float = 7.0, anneal: bool = True,
                 head_prefixes: Sequence[str] = ('roi_head.bbox_head.', ), **kwargs):
        if not lambda0 >= 1:
            raise InputError(f'optim_wrapper.lambda0 must be >= 1, got {lambda0!r}')
        super().__init__(*args, **kwargs)
        self.lambda0 = float(lambda0)
        self.anneal = bool(anneal)
        self.head_prefixes = tuple(head_prefixes)
        self._head_params = None

    def initialize_count_status(self, model: torch.nn.Module, init_counts: int,
                                max_counts: int) -> None:
        super().initialize_count_status(model, init_counts, max_counts)
        if is_model_wrapper(model):
            model = model.module
        self._head_params = [
            p for name, p in model.named_parameters()
            if p.requires_grad and name.startswith(self.head_prefixes)
        ]
        if not self._head_params:
            raise InputError('optim_wrapper.head_prefixes '
                             f'{list(self.head_prefixes)} match no trainable parameter of '
                             f'{type(model).__name__}')

    def current_lambda(self) -> float:
        """λ for the step that follows the latest backward (iteration ``inner_count - 1``)."""
        if self._head_params is None:
            raise RuntimeError('RGA needs the total number of iterations: call '
                               'initialize_count_status(model, start_iter, max_iters) first '
                               "(mmengine's Runner does)")
        return rga_lambda(self._inner_count - 1, self._max_counts, self.lambda0, self.anneal)

    def step(self, **kwargs) -> None:
        lam = self.current_lambda()
        grads = [p.grad for p in self._head_params if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, lam)
        self.message_hub.update_scalar('train/lambda', lam)
        super().step(**kwargs)


@OPTIM_WRAPPERS.register_module()
class RGAOptimWrapper(RGAMixin, OptimWrapper):
    """``OptimWrapper`` with R-CNN Gradient Annealing."""


@OPTIM_WRAPPERS.register_module()
class AmpRGAOptimWrapper(RGAMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` with R-CNN Gradient Annealing: λ scales the loss-scaled gradients,
    which is the same as scaling the true ones since both are linear."""
