"""The paper configs' ImageNet weights, loaded without torchvision and found before training.

mmengine resolves ``torchvision://NAME`` by importing torchvision, which is not in our stack
(the registry's build for our torch is a CUDA one whose ops do not load on a CPU install), and
downloads ``open-mmlab://NAME`` on first use. Importing ``prm_rga`` registers one loader for
both schemes (mmengine's ``CheckpointLoader.register_scheme``) that reads a local file instead:
the file name of the name's URL in mmengine's model-zoo lists, in ``$PRM_RGA_PRETRAINED`` when
set, else in ``torch.hub.get_dir()/checkpoints`` (where torch and mmengine keep downloads, so a
machine that downloaded the weights once has them). Nothing is downloaded; a missing file is an
InputError that names it and where to put it. ``check_pretrained`` finds every checkpoint a
config's training reads, so ``prm-rga train`` and ``suite run`` refuse before anything starts.
"""
import os
import os.path as osp
from urllib.parse import urlparse

import mmengine
import torch
from mmengine.runner.checkpoint import (CheckpointLoader, get_deprecated_model_names,
                                        get_external_models, load_from_local)

from prm_rga.checkpoint import why_not_loadable
from prm_rga.errors import InputError
from prm_rga.synth_backbone import synth_backbone_checkpoint

ENV = 'PRM_RGA_PRETRAINED'
ZOO_PREFIXES = ('torchvision://', 'modelzoo://', 'open-mmlab://', 'openmmlab://')


def pretrained_dir() -> str:
    return os.environ.get(ENV) or osp.join(torch.hub.get_dir(), 'checkpoints')


def _where() -> str:
    return f'${ENV}' if os.environ.get(ENV) else 'the torch hub cache'


def zoo_url(name: str) -> str:
    """The download URL mmengine's model-zoo lists give a ``torchvision://``/``open-mmlab://``
    name (torchvision's from ``hub/torchvision_0.12.json``, the 0.12 names mmdet's configs use)."""
    prefix, model = name.split('://', 1)
    if prefix in ('torchvision', 'modelzoo'):
        urls = mmengine.load(osp.join(mmengine.__path__[0], 'hub', 'torchvision_0.12.json'))
    else:
        urls = get_external_models()
        model = get_deprecated_model_names().get(model, model)
    if model not in urls:
        raise InputError(f'{name}: no such checkpoint in mmengine\'s model zoo; known '
                         f'{prefix}:// names: {", ".join(sorted(urls))}')
    return urls[model]


def resolve(checkpoint: str) -> str:
    """The local file a checkpoint loads from: model-zoo names from the pretrained folder,
    other paths as given."""
    if not checkpoint.startswith(ZOO_PREFIXES):
        return osp.expanduser(checkpoint)
    return osp.join(pretrained_dir(), osp.basename(urlparse(zoo_url(checkpoint)).path))


def missing(checkpoint: str):
    """Why the checkpoint cannot be read here (a sentence naming the file), or None."""
    path = resolve(checkpoint)
    if osp.isfile(path) and os.access(path, os.R_OK):
        return None
    state = 'is not readable' if osp.exists(path) else 'not found'
    if not checkpoint.startswith(ZOO_PREFIXES):
        return f'checkpoint {path} {state}'
    return (f'pretrained weights {checkpoint} {state}: expected {path} (in {_where()}). Put '
            f'{osp.basename(path)} there (it is {zoo_url(checkpoint)}), or set ${ENV} to a '
            'folder that holds it; Ray workers need the same file at the same path')


@CheckpointLoader.register_scheme(prefixes=ZOO_PREFIXES, force=True)
def load_from_pretrained_dir(filename, map_location=None):
    """mmengine's loader for model-zoo names (``init_cfg=dict(type='Pretrained', ...)``)."""
    problem = missing(filename)
    if problem:
        raise InputError(problem)
    return load_from_local(resolve(filename), map_location)


def pretrained_checkpoints(cfg) -> list:
    """(field, checkpoint) of every file training the config reads before its first step:
    each ``Pretrained`` init_cfg of the model, and ``load_from``. Model-zoo names and local
    paths; other URLs (http, s3, ...) are mmengine's to fetch."""
    found = []

    def walk(node, field):
        if isinstance(node, dict):
            if node.get('type') == 'Pretrained' and node.get('checkpoint'):
                found.append((f'{field}.checkpoint', node['checkpoint']))
            for key, value in node.items():
                walk(value, f'{field}.{key}')
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f'{field}[{i}]')

    walk(cfg.get('model'), 'model')
    if cfg.get('load_from'):
        found.append(('load_from', cfg.load_from))
    return [(field, ckpt) for field, ckpt in found
            if ckpt.startswith(ZOO_PREFIXES) or '://' not in ckpt]


def check_checkpoint(checkpoint: str, field: str) -> None:
    """The checkpoint is a file here that torch loads as one, else an InputError naming FIELD."""
    problem = missing(checkpoint)
    if problem is None:
        why = why_not_loadable(resolve(checkpoint))
        problem = why and f'{resolve(checkpoint)} is not a checkpoint: {why}'
    if problem:
        raise InputError(f'{field}: {problem}')


def check_pretrained(cfg, where: str = '') -> None:
    """Every checkpoint the config's training reads is a checkpoint file here, else InputError;
    the backbone its ``synth_backbone`` pretrains on first use excepted."""
    made = synth_backbone_checkpoint(cfg)
    for field, checkpoint in pretrained_checkpoints(cfg):
        if checkpoint != made:
            check_checkpoint(checkpoint, f'{where}{field}')
