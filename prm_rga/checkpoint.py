"""Loading mmengine checkpoints under torch >= 2.6, whose ``torch.load`` defaults to
``weights_only=True``: mmengine 0.10.7 calls it without the argument, and its checkpoints hold
the message hub's state (``HistoryBuffer`` objects with numpy arrays and scalars, and their
statistics methods pickled as ``getattr(HistoryBuffer, 'mean')``), which the weights-only
unpickler refuses. We allow exactly those globals instead of turning the safe loader off; the
unpickler still refuses to call anything not allowed, so ``getattr`` can only fetch attributes.

And the check that a file is a checkpoint at all, and the published form of a checkpoint that a
tracked run keeps as its model."""
import functools
import os
import re
import zipfile

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


def why_not_loadable(path: str):
    """Why torch's weights-only loader (what mmengine will call) cannot read PATH as a checkpoint,
    in one line, or None. Checked before training or testing starts, so that a file that is not
    a checkpoint (a config, a truncated download) is named rather than failing deep in mmengine;
    a zip-format file is memory-mapped, not read."""
    stat = os.stat(path)
    return _why_not_loadable(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=None)  # the trials of a suite share their pretrained files
def _why_not_loadable(path: str, size: int, mtime_ns: int):
    try:
        checkpoint = torch.load(path, map_location='cpu', mmap=zipfile.is_zipfile(path))
    except Exception as err:  # torch raises anything from EOFError to KeyError on a non-checkpoint
        text = ' '.join(str(err).split())
        # the weights-only loader wraps its reason in advice about weights_only=False
        found = re.search(r'WeightsUnpickler error: (.*?)(?: Check the documentation|$)', text)
        detail = (found.group(1) if found else text).split('. ')[0][:200]
        return f'torch cannot load it ({type(err).__name__}: {detail or "empty or truncated"})'
    if not isinstance(checkpoint, dict):
        return f'it holds a {type(checkpoint).__name__}, not a state dict'
    return None


def publish_checkpoint(src: str, dst: str) -> None:
    """The weights and ``meta`` of an mmengine checkpoint, without the optimizer, scheduler and
    message-hub state (as mmdet's tools/model_converters/publish_model.py): what evaluating or
    fine-tuning needs, at half the size of a checkpoint with SGD momentum."""
    checkpoint = torch.load(src, map_location='cpu')
    torch.save({'meta': checkpoint.get('meta', {}), 'state_dict': checkpoint['state_dict']}, dst)
