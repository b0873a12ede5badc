"""Loading mmengine checkpoints under torch >= 2.6, whose ``torch.load`` defaults to
``weights_only=True``: mmengine 0.10.7 calls it without the argument, and its checkpoints hold
the message hub's state (``HistoryBuffer`` objects with numpy arrays and scalars, and their
statistics methods pickled as ``getattr(HistoryBuffer, 'mean')``), which the weights-only
unpickler refuses. We allow exactly those globals instead of turning the safe loader off; the
unpickler still refuses to call anything not allowed, so ``getattr`` can only fetch attributes.

And the published form of a checkpoint that a tracked run keeps as its model."""
import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def allow_mmengine_checkpoints() -> None:
    torch.serialization.add_safe_globals([
        HistoryBuffer,
        getattr,
        np.ndarray,
        np.dtype,
        np._core.multiarray._reconstruct,
        np._core.multiarray.scalar,
        *{type(np.dtype(t)) for t in ('float64', 'float32', 'int64', 'int32', 'bool')},
    ])


def publish_checkpoint(src: str, dst: str) -> None:
    """The weights and ``meta`` of an mmengine checkpoint, without the optimizer, scheduler and
    message-hub state (as mmdet's tools/model_converters/publish_model.py): what evaluating or
    fine-tuning needs, at half the size of a checkpoint with SGD momentum."""
    checkpoint = torch.load(src, map_location='cpu')
    torch.save({'meta': checkpoint.get('meta', {}), 'state_dict': checkpoint['state_dict']}, dst)
