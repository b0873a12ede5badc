"""Stops training at the first non-finite loss with an error that names the iteration and the
loss terms. mmdet's CheckInvalidLossHook asserts with an empty message; a diverged suite trial
must end with a reason the runner can record."""
import math

from mmdet.engine.hooks import CheckInvalidLossHook
from mmdet.registry import HOOKS

from prm_rga.errors import DivergedError


@HOOKS.register_module()
class FiniteLossHook(CheckInvalidLossHook):

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        values = {name: float(value.detach()) for name, value in outputs.items()}
        bad = {name: value for name, value in values.items() if not math.isfinite(value)}
        if bad:
            terms = ', '.join(f'{name}={value}' for name, value in bad.items())
            raise DivergedError(f'training diverged at iteration {runner.iter + 1}: {terms} '
                                '(lower the learning rate or lambda0, or add warmup)')
