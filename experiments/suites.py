"""What a suite is: the trials of one paper experiment, as the launcher and the analysis see them.

A suite file (`experiments/suites/NAME.yaml`, schema in docs/suites.md) names the paper's
settings of one experiment as *params* (detector, ratios, lambda0, ...); `expand` turns it into
trials, each with the complete mmengine configs to train, built from one base config per
detector and dataset by `build_config`. The whole file is validated before anything runs.
mmengine is imported where configs are built, so that the report can ask `base_config` which
rows a scale has without it.
"""
from __future__ import annotations

import ast
import copy
import functools
import hashlib
import itertools
import json
import os.path as osp
from dataclasses import dataclass
from fractions import Fraction
from glob import glob
from typing import TYPE_CHECKING

import yaml

from prm_rga_errors import InputError, read_text

if TYPE_CHECKING:
    from mmengine.config import Config

SUITES_DIR = osp.join(osp.dirname(__file__), 'suites')
CONFIGS_DIR = osp.join(osp.dirname(__file__), 'configs')
SCALES = ('tiny', 'paper')

# The paper's settings, their allowed values and the defaults (the paper's baseline).
PARAMS = {
    'detector': (('faster_rcnn', 'cascade_rcnn', 'mask_rcnn'), 'faster_rcnn'),
    'backbone': (('r50', 'r101', 'x101-32x4d', 'x101-64x4d'), 'r50'),
    'schedule': (('1x', '2x'), '1x'),
    'dataset': (('coco', 'crowdhuman'), 'coco'),
    'ratios': (None, '1:3'),  # one 'pos:neg' per R-CNN head, e.g. '1:1,1:9'
    'sampling': (('soft', 'hard'), 'soft'),
    'lambda0': (None, '1'),  # 1 = no RGA
    'anneal': (('true', 'false'), 'true'),
    'ensemble': (('none', 'separate'), 'none'),
}
# One base config per (scale, detector, dataset); paper configs also per backbone. The tiny
# scale has one small backbone: a suite lists backbone variants under its paper scale only.
BASE_CONFIGS = {
    'tiny': {
        ('faster_rcnn', 'coco'): 'tiny/faster-rcnn_tiny_synth.py',
        ('cascade_rcnn', 'coco'): 'tiny/cascade-rcnn_tiny_synth.py',
        ('mask_rcnn', 'coco'): 'tiny/mask-rcnn_tiny_synth.py',
        ('faster_rcnn', 'crowdhuman'): 'tiny/faster-rcnn_tiny_crowd_synth.py',
    },
    'paper': {
        ('faster_rcnn', 'coco'): 'faster_rcnn/faster-rcnn_{backbone}_fpn_1x_coco.py',
        ('cascade_rcnn', 'coco'): 'cascade_rcnn/cascade-rcnn_{backbone}_fpn_1x_coco.py',
        ('mask_rcnn', 'coco'): 'mask_rcnn/mask-rcnn_{backbone}_fpn_1x_coco.py',
        ('faster_rcnn', 'crowdhuman'): 'crowdhuman/faster-rcnn_{backbone}_fpn_crowdhuman.py',
    },
}
SUITE_KEYS = {'description', 'analysis', 'params', 'variants', 'grid', 'seeds', 'scales'}
SCALE_KEYS = {'resources', 'cfg_options', 'seeds', 'variants', 'log_checkpoint'}


@dataclass(frozen=True)
class Trial:
    name: str  # unique in the suite and stable across launches, e.g. 'lambda0=7;seed=0'
    params: dict  # every param of PARAMS, config-key axes, seed and config_hash, as strings
    # mmengine Configs ready for prm_rga.train.make_runner; two for ensemble=separate. The seeds
    # of one setting share all but `randomness` (suites.reseed): copy a config before changing it
    configs: tuple
    resources: dict  # {'CPU': int, 'GPU': int}


@dataclass(frozen=True)
class Suite:
    name: str  # e.g. 'table4'
    path: str  # the YAML file it was read from
    description: str
    analysis: tuple  # what the analysis draws from it, e.g. ('table4',) or ('fig3',)
    spec: dict  # the validated file content


def list_suites() -> list:
    return sorted(osp.splitext(osp.basename(p))[0] for p in glob(osp.join(SUITES_DIR, '*.yaml')))


def load_suite(name_or_path: str) -> Suite:
    """Read and validate a suite file, by name (`table4`) or path; nothing is built yet."""
    path = name_or_path
    if not name_or_path.endswith(('.yaml', '.yml')):
        path = osp.join(SUITES_DIR, f'{name_or_path}.yaml')
        if not osp.isfile(path):
            raise InputError(f'unknown suite {name_or_path!r}; known suites: '
                             f'{", ".join(list_suites())} (or give a path to a .yaml file)')
    if not osp.isfile(path):
        raise InputError(f'suite file not found: {path}')
    try:
        spec = yaml.safe_load(read_text(path, 'suite file'))
    except yaml.YAMLError as err:  # in one line: where, and what yaml found there
        mark = getattr(err, 'problem_mark', None)
        where = f', line {mark.line + 1}, column {mark.column + 1}' if mark else ''
        raise InputError(f'{path}{where}: malformed YAML: {getattr(err, "problem", None) or err}'
                         ) from None
    _check_spec(spec, path)
    return Suite(name=osp.splitext(osp.basename(path))[0], path=path,
                 description=spec.get('description', ''),
                 analysis=tuple(spec.get('analysis', ())), spec=spec)


def expand(suite: Suite, scale: str, seeds=None) -> list:
    """The suite's trials at one scale: variants x grid x seeds, each with its configs. Every
    trial is built here, so a bad axis or config key fails before any trial starts. Each base
    config is read once and each setting built once (reading a config costs as much as 100
    copies of it); the seeds of a setting are derived from it by `reseed`."""
    if scale not in SCALES:
        raise InputError(f'--scale must be one of {SCALES}, got {scale!r}')
    spec, where = suite.spec, suite.path
    at = spec['scales'].get(scale)
    if at is None:
        raise InputError(f'{where}: suite {suite.name!r} has no {scale!r} scale '
                         f'(scales: {", ".join(spec["scales"])})')
    at = at or {}
    resources = _resources(at.get('resources'), f'{where}: scales.{scale}.resources')
    seeds = list(seeds if seeds is not None else at.get('seeds', spec.get('seeds', [0])))
    variants = at.get('variants', spec.get('variants')) or [{}]
    grid = spec.get('grid') or {}
    points = [_point(grid, values) for values in itertools.product(*grid.values())]
    settings = []
    for variant in variants:
        for point in points:
            settings.append({**spec.get('params', {}), **variant, **point})
    varying = [k for k in _keys(settings) if len({repr(s.get(k)) for s in settings}) > 1]
    bases, trials = {}, []
    for setting in settings:
        built = None  # the setting's configs, built for its first seed
        for seed in seeds:
            params = {k: _canonical(k, v) for k, v in {**_defaults(), **setting}.items()}
            params['seed'] = _canonical('seed', seed)
            if built is None:
                field = f'{where}: trial {_name(params, varying)}'
                configs = built = build_config(params, scale, at.get('cfg_options'), field, bases)
            else:
                configs = reseed(built, int(params['seed']))
            if len(configs) > 1:
                params['member_seeds'] = ','.join(str(c.randomness.seed) for c in configs)
            params['config_hash'] = config_hash(configs, max(resources.get('GPU', 0), 1))
            trials.append(Trial(_name(params, varying), params, configs, resources))
    names = [t.name for t in trials]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f'{where}: trials repeat at scale {scale!r}: {duplicates}')
    return trials


def logs_checkpoint(suite: Suite, scale: str) -> bool:
    """Whether the trials log their final checkpoint to MLflow: tiny ones always (a few MiB);
    paper ones when the suite says so (`scales.paper.log_checkpoint`), as a lab's storage
    allows (`suite run --dry-run` tells the size)."""
    at = (suite.spec.get('scales') or {}).get(scale) or {}
    return scale == 'tiny' or bool(at.get('log_checkpoint'))


def base_config(params: dict, scale: str, field='params') -> str:
    """The path of the base config of a trial's detector, dataset and backbone at SCALE;
    InputError where the scale has none (the tiny scale has one backbone)."""
    key = (params['detector'], params['dataset'])
    template = BASE_CONFIGS[scale].get(key)
    if template is None:
        raise InputError(f'{field}: no {scale} config for detector={key[0]} on {key[1]}')
    if scale == 'tiny' and params['backbone'] != 'r50':
        raise InputError(f'{field}: backbone={params["backbone"]} has no tiny config '
                         '(the tiny scale has one backbone): list it under scales.paper.variants')
    path = osp.join(CONFIGS_DIR, template.format(backbone=params['backbone']))
    if not osp.isfile(path):
        raise InputError(f'{field}: config file not found: {path}')
    return path


def build_config(params: dict, scale: str, cfg_options=None, field='params',
                 bases=None) -> tuple:
    """The configs one trial trains: the base config of its detector and dataset with the
    trial's ratios, sampling, RGA, schedule and seed applied, then config-key axes and the
    scale's cfg_options. Two configs (one head each) when ensemble=separate. ``bases`` (path ->
    Config) keeps the base configs read, for the next trial of the same suite."""
    from mmengine.config import Config
    path = base_config(params, scale, field)
    ratios = params['ratios'].split(',')
    groups = [ratios] if params['ensemble'] == 'none' else [[r] for r in ratios]
    if params['ensemble'] == 'separate' and len(ratios) < 2:
        raise InputError(f'{field}: ensemble=separate needs two or more ratios')
    bases = {} if bases is None else bases
    if path not in bases:
        bases[path] = Config.fromfile(path)
    configs = []
    for member, group in enumerate(groups):
        cfg = copy.deepcopy(bases[path])
        _set_heads(cfg, [_pos_fraction(r, field) for r in group], params['sampling'])
        _set_rga(cfg, float(params['lambda0']), params['anneal'] == 'true')
        if params['schedule'] == '2x':
            _double_schedule(cfg)
        cfg.randomness = dict(seed=member_seed(int(params['seed']), member))
        overrides = {k: yaml.safe_load(v) for k, v in params.items() if '.' in k}
        overrides.update(cfg_options or {})
        tree = cfg.to_dict() if overrides else None
        for k in overrides:
            if k in ('randomness', 'randomness.seed'):  # reseed sets it per trial
                raise InputError(f'{field}: {k}: the seed is set by the suite\'s seeds')
            _check_key(tree, k, field)
        cfg.merge_from_dict(overrides)
        _absolute_data_paths(cfg)
        configs.append(cfg)
    return tuple(configs)


def reseed(configs, seed: int) -> tuple:
    """The configs of a trial (`build_config`) for another seed: mmengine's shallow copies,
    sharing every part but ``randomness`` with CONFIGS, so that the seeds of a setting cost
    one build and their memory once."""
    derived = []
    for member, cfg in enumerate(configs):
        cfg = cfg.copy()
        cfg.randomness = dict(cfg.randomness, seed=member_seed(seed, member))
        derived.append(cfg)
    return tuple(derived)


def member_seed(seed: int, member: int) -> int:
    """The seed of member ``member`` of a trial with ``seed``: the first member (and every
    single-detector trial) trains with the trial's seed; the separately trained detectors of
    Table 5's x2 with seeds of their own (another init and data order), 1000 apart so that no
    member repeats another trial's detector for seeds below 1000."""
    return seed + 1000 * member


def _absolute_data_paths(cfg: Config) -> None:
    """Data paths relative to the launching directory made absolute: trials run in their own
    directories, on any node (which must hold the data at the same path)."""
    def fix(node, key):
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, str) and '://' not in value and not osp.isabs(value):
            node[key] = osp.abspath(value) + ('/' if value.endswith('/') else '')

    fix(cfg.get('synth_data'), 'out_dir')
    if cfg.get('synth_backbone'):
        fix(cfg.synth_backbone, 'out_dir')
        fix(cfg.model.backbone.init_cfg, 'checkpoint')
    for split in ('train', 'val', 'test'):
        dataset = (cfg.get(f'{split}_dataloader') or {}).get('dataset')
        while dataset:  # through dataset wrappers
            fix(dataset, 'data_root')
            dataset = dataset.get('dataset')
        evaluators = cfg.get(f'{split}_evaluator')
        for evaluator in evaluators if isinstance(evaluators, list) else [evaluators]:
            fix(evaluator, 'ann_file')


def ensemble_config(configs, checkpoints) -> Config:
    """The evaluation config of Table 5's "Faster R-CNN x2": the separately trained detectors
    as one `ProposalEnsemble`, boxes regressed by the one trained with the most positives."""
    fractions = [c.model.train_cfg.rcnn.sampler.pos_fraction for c in configs]
    cfg = copy.deepcopy(configs[0])
    cfg.model = dict(
        type='ProposalEnsemble',
        detectors=[c.model for c in configs],
        checkpoints=list(checkpoints),
        reg_model=fractions.index(max(fractions)),
        data_preprocessor=configs[0].model.data_preprocessor)
    cfg.load_from = None
    cfg.pop('synth_backbone', None)  # the members' backbones come with their checkpoints
    return cfg


def config_hash(configs, processes: int = 1) -> str:
    """What decides a trial's result, as 12 hex digits (docs/mlflow-schema.md): its merged
    configs (seed included), the data-parallel PROCESSES it trains in (one per GPU: the batch
    is per process), the versions of the synthetic set and backbone they make, the code of
    prm_rga and the versions of the stack it trains with. The synthetic set's and backbone's
    folders do not count (`portable`), so that a clone at another path finds the same runs to
    reuse."""
    made = set(key for cfg in configs for key in ('synth_data', 'synth_backbone') if cfg.get(key))
    text = json.dumps([[portable(cfg, cfg.to_dict()) for cfg in configs], processes,
                       code_version(), data_versions(made)], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def portable(cfg, part) -> str:
    """PART of CFG as JSON text in which the folders of the synthetic set and backbone CFG
    makes read ``<synth_data>``, ``<synth_backbone>``: their content is fixed by their arguments
    and version, wherever a clone keeps them."""
    text = json.dumps(part, sort_keys=True, default=str)
    folders = {key: cfg[key]['out_dir'].rstrip('/') for key in ('synth_data', 'synth_backbone')
               if cfg.get(key)}
    for key, folder in sorted(folders.items(), key=lambda kv: -len(kv[1])):  # nested folders
        text = text.replace(folder, f'<{key}>')
    return text


def data_versions(made) -> dict:
    """The generator versions of the synthetic data (``synth_data``) and backbone
    (``synth_backbone``) a config makes: a new version means other images or weights."""
    from prm_rga import synth_backbone
    from prm_rga.datasets import synth
    return {key: module.VERSION for key, module in
            (('synth_data', synth), ('synth_backbone', synth_backbone)) if key in made}


@functools.lru_cache(maxsize=None)
def code_version() -> dict:
    """The code a trial trains with: a hash of prm_rga's modules as parsed (comments,
    docstrings and layout do not change it) and the versions of torch, mmcv, mmengine, mmdet."""
    from importlib import metadata, util
    root = util.find_spec('prm_rga').submodule_search_locations[0]
    digest = hashlib.sha1()
    for path in sorted(glob(osp.join(root, '**', '*.py'), recursive=True)):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            body = getattr(node, 'body', None)
            if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        digest.update(osp.relpath(path, root).encode() + ast.dump(tree).encode())
    return {'prm_rga': digest.hexdigest()[:12],
            **{name: metadata.version(name) for name in ('torch', 'mmcv', 'mmengine', 'mmdet')}}


def _set_heads(cfg: Config, fractions: list, sampling: str) -> None:
    """One R-CNN head per positive fraction; more than one makes the roi head parallel (PRM)."""
    roi_head, rcnn = cfg.model.roi_head, cfg.model.train_cfg.rcnn
    cascade = isinstance(rcnn, list)
    stages = rcnn if cascade else [rcnn]
    per_stage = []
    for stage in stages:
        heads = []
        for fraction in fractions:
            head = copy.deepcopy(stage)
            head.sampler.pos_fraction = fraction
            if sampling == 'hard':
                head.sampler.type = 'HardRatioSampler'
            heads.append(head)
        per_stage.append(heads)
    if len(fractions) == 1:
        cfg.model.train_cfg.rcnn = [h[0] for h in per_stage] if cascade else per_stage[0][0]
        return
    if cascade:
        roi_head.type = 'ParallelCascadeRoIHead'
        roi_head.bbox_head = [[head] * len(fractions) for head in roi_head.bbox_head]
        cfg.model.train_cfg.rcnn = per_stage
    else:
        roi_head.type = 'ParallelRoIHead'
        roi_head.bbox_head = [roi_head.bbox_head] * len(fractions)
        cfg.model.train_cfg.rcnn = per_stage[0]
    roi_head.predict_each_head = True  # each head's AP too (Table 1)


def _set_rga(cfg: Config, lambda0: float, anneal: bool) -> None:
    if lambda0 == 1:
        return
    amp = cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper'
    cfg.optim_wrapper.type = 'AmpRGAOptimWrapper' if amp else 'RGAOptimWrapper'
    cfg.optim_wrapper.lambda0 = lambda0
    cfg.optim_wrapper.anneal = anneal


def _double_schedule(cfg: Config) -> None:
    """Detectron's 2x: twice the epochs, the learning-rate steps at twice the epochs."""
    cfg.train_cfg.max_epochs *= 2
    for sched in cfg.param_scheduler:
        if sched.get('by_epoch', True):
            sched.end = 2 * sched.end
            if 'milestones' in sched:
                sched.milestones = [2 * m for m in sched.milestones]


def _pos_fraction(ratio: str, field: str) -> float:
    """'1:k' (pos:neg) -> 1/(1+k), the sampler's pos_fraction."""
    try:
        pos, neg = (Fraction(x) for x in ratio.split(':'))
        assert pos > 0 and neg >= 0
    except (ValueError, AssertionError, ZeroDivisionError):
        raise InputError(f'{field}: ratios must be pos:neg pairs like 1:3, one per head '
                         f"(quote them in YAML, '1:3', or it reads a number); got {ratio!r}") \
            from None
    return float(pos / (pos + neg))


def _check_key(node: dict, key: str, field: str) -> None:
    """KEY (dotted) names a key of the config NODE (a plain dict)."""
    for part in key.split('.'):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise InputError(f'{field}: {key!r} names no key of the config')


def _point(grid: dict, values) -> dict:
    """One grid point; an axis whose values are mappings sets several params at once."""
    point = {}
    for axis, value in zip(grid, values):
        point.update(value if isinstance(value, dict) else {axis: value})
    return point


def _canonical(name: str, value) -> str:
    """Params as the strings MLflow stores: yes/no as true/false, numbers without '.0'."""
    if '.' in name:  # a config key: read back with yaml.safe_load in build_config
        return value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if name in ('lambda0', 'seed'):
        try:
            return format(float(value), 'g')
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, list):
        return ','.join(str(v) for v in value)
    return str(value)


def _defaults() -> dict:
    return {k: default for k, (_, default) in PARAMS.items()}


def _keys(settings) -> list:
    """The axes of the settings, the paper's params first in PARAMS order."""
    keys = [k for k in PARAMS if any(k in s for s in settings)]
    for s in settings:
        keys += [k for k in s if k not in keys]
    return keys


def _name(params: dict, varying) -> str:
    """The varying params of a trial; a config-key axis some variants leave out is left out."""
    return ';'.join(f'{k}={params[k]}' for k in [*varying, 'seed'] if k in params)


def _resources(res, field: str) -> dict:
    if not isinstance(res, dict) or set(res) - {'CPU', 'GPU'}:
        raise InputError(f'{field} must be a mapping with CPU and optionally GPU, got {res!r}')
    out = {'CPU': res.get('CPU', 1), 'GPU': res.get('GPU', 0)}
    for k, v in out.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < (1 if k == 'CPU' else 0):
            raise InputError(f'{field}.{k} must be an integer >= {1 if k == "CPU" else 0}, '
                             f'got {v!r}')
    return out


def _check_spec(spec, path: str) -> None:
    """Schema of a suite file; values of the paper's params are checked here, config-key axes
    (dotted names) against the configs in `expand`."""
    if not isinstance(spec, dict):
        raise InputError(f'{path}: a suite file is a YAML mapping')
    unknown = set(spec) - SUITE_KEYS
    if unknown:
        raise InputError(f'{path}: unknown keys {sorted(unknown)} (allowed: {sorted(SUITE_KEYS)})')
    if not isinstance(spec.get('scales'), dict) or not spec['scales']:
        raise InputError(f'{path}: scales: give at least one of {SCALES} with its resources')
    for scale, at in spec['scales'].items():
        if scale not in SCALES:
            raise InputError(f'{path}: scales.{scale}: unknown scale (allowed: {SCALES})')
        if not isinstance(at, dict) or 'resources' not in at:
            raise InputError(f'{path}: scales.{scale}: needs resources: {{CPU: n, GPU: m}}')
        if set(at) - SCALE_KEYS:
            raise InputError(f'{path}: scales.{scale}: unknown keys {sorted(set(at) - SCALE_KEYS)}')
        _resources(at['resources'], f'{path}: scales.{scale}.resources')
        if not isinstance(at.get('cfg_options', {}), dict):
            raise InputError(f'{path}: scales.{scale}.cfg_options must be a mapping')
        _check_settings(at.get('variants', []), f'{path}: scales.{scale}.variants')
        flag = at.get('log_checkpoint', False)
        if not isinstance(flag, bool) or ('log_checkpoint' in at and scale != 'paper'):
            raise InputError(f'{path}: scales.{scale}.log_checkpoint: true or false, at the paper '
                             'scale (tiny trials always log their checkpoint)')
    for key in ('analysis', 'seeds'):
        if not isinstance(spec.get(key, []), list):
            raise InputError(f'{path}: {key} must be a list')
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in spec.get('seeds', [])):
        raise InputError(f'{path}: seeds must be integers')
    _check_settings([spec.get('params') or {}], f'{path}: params')
    _check_settings(spec.get('variants') or [], f'{path}: variants')
    grid = spec.get('grid') or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise InputError(f'{path}: grid maps each axis to a non-empty list of values')
    for axis, values in grid.items():
        if all(isinstance(v, dict) for v in values):
            _check_settings(values, f'{path}: grid.{axis}')
        else:
            _check_settings([{axis: v} for v in values], f'{path}: grid')


def _check_settings(settings, field: str) -> None:
    if not isinstance(settings, list) or not all(isinstance(s, dict) for s in settings):
        raise InputError(f'{field} must be a list of mappings')
    for setting in settings:
        for name, value in setting.items():
            if name not in PARAMS and '.' not in name:
                raise InputError(f'{field}: unknown axis {name!r}: use one of {sorted(PARAMS)} '
                                 'or a config key (dotted, e.g. model.rpn_head.loss_cls.loss_weight)')
            allowed = PARAMS.get(name, (None,))[0]
            value = _canonical(name, value)
            if allowed and value not in allowed:
                raise InputError(f'{field}: {name}={value!r} is not one of {allowed}')
            if name == 'lambda0':
                try:
                    assert float(value) >= 1
                except (ValueError, AssertionError):
                    raise InputError(f'{field}: lambda0 must be a number >= 1, got {value!r}') \
                        from None
            if name == 'ratios':
                for ratio in value.split(','):
                    _pos_fraction(ratio, field)
