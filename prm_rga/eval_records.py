"""``EvalRecordHook``: writes the per-image evaluation records of ``prm_rga_eval.records``
after every evaluation."""
import os
import os.path as osp

from mmengine.dist import master_only
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from prm_rga_eval.records import CROWD_FILE, FILE, atomic_savez, crowd_record_arrays, record_arrays


@HOOKS.register_module()
class EvalRecordHook(Hook):
    """Writes ``artifacts/eval_records.npz`` (module doc) after every validation and test
    epoch, from the evaluator's ``GTCountSubsetMetric``; the last evaluation's stays."""

    priority = 'LOW'

    @master_only
    def after_val_epoch(self, runner, metrics=None):
        self._write(runner, runner.val_evaluator)

    @master_only
    def after_test_epoch(self, runner, metrics=None):
        self._write(runner, runner.test_evaluator)

    def _write(self, runner, evaluator):
        records = [m.last_record for m in evaluator.metrics
                   if getattr(m, 'last_record', None) is not None]
        if not records:
            runner.logger.warning('EvalRecordHook: no GTCountSubsetMetric or '
                                  'CrowdHumanMMRMetric in the evaluator, no evaluation record '
                                  'written')
            return
        out_dir = osp.join(runner.work_dir, 'artifacts')
        os.makedirs(out_dir, exist_ok=True)
        for record in records:
            if 'gt_records' in record:
                atomic_savez(osp.join(out_dir, CROWD_FILE), crowd_record_arrays(**record))
            else:
                atomic_savez(osp.join(out_dir, FILE), record_arrays(**record))
