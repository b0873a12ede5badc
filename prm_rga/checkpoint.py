"""Loading mmengine checkpoints under torch >= 2.6, whose ``torch.load`` defaults to
``weights_only=True``: mmengine 0.10.7 calls it without the argument, and its checkpoints hold
the message hub's state (``HistoryBuffer`` objects with numpy arrays and scalars, and their
statistics methods pickled as ``getattr(HistoryBuffer, 'mean')``), which the weights-only
unpickler refuses. We allow exactly those globals instead of turning the safe loader off; the
unpickler still refuses to call anything not allowed, so ``getattr`` can only fetch attributes."""
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
