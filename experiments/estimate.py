"""What a suite costs before it runs, from measurements only.

A trial's time is setup + iterations x step + evaluations x evaluation, per detector it trains.
The three rates and the iterations per epoch are properties of its *cost family*: the trials
that train the same detector kind (detector, backbone, heads, sampling, ensemble) on the same
data with the same batch and resources; seeds, RGA, the sampling ratio, the schedule and other
config keys are taken not to change them. Every tracked trial logs its own rates (`CostHook`,
metrics `cost/*`, tag `cost_family`); a family with finished runs in the store is estimated
from them (medians of the latest ones), any other by a short calibration here: a few
iterations and one evaluation of a few images of its first trial, from random weights (weights
do not change the cost), once per command however many suites it plans (`Estimator`). The
suite's wall time is Ray Tune's first-come schedule of the trials on the free resources, at
most ``max_concurrent`` at once.
"""
import contextlib
import copy
import hashlib
import heapq
import io
import json
import math
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from experiments import reuse, suites, tracking
from prm_rga_errors import InputError

FAMILY = 'cost_family'  # child-run tag
COST = 'cost.json'  # what CostHook measured, in the work dir
RATES = ('step_s', 'eval_s', 'setup_s', 'iters_per_epoch')  # logged as cost/<name>
HISTORY_RUNS = 20  # the latest finished runs of a family that an estimate takes
CALIBRATION_VAL_IMAGES = 16  # evaluated in a calibration, at least one val batch


def family(trial) -> str:
    """The trial's cost family, as 12 hex digits."""
    kind = {k: trial.params.get(k, suites.PARAMS[k][1]) for k in
            ('detector', 'backbone', 'dataset', 'sampling', 'ensemble')}
    kind['heads'] = len(trial.params.get('ratios', suites.PARAMS['ratios'][1]).split(','))
    data = [suites.portable(cfg, {k: cfg.get(k) for k in (
        'train_dataloader', 'val_dataloader', 'synth_data')}) for cfg in trial.configs]
    text = json.dumps([kind, trial.resources, data], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


@HOOKS.register_module()
class CostHook(Hook):
    """Times the training iterations and the evaluations of a run (``cost.json`` in its work
    dir, written after training, by the main process only)."""
    priority = 'VERY_HIGH'

    def __init__(self):
        self.iter_s, self.eval_s, self.evals = [], 0.0, 0

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._iter = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.iter_s.append(time.perf_counter() - self._iter)

    def before_val_epoch(self, runner) -> None:
        self._eval = time.perf_counter()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.eval_s += time.perf_counter() - self._eval
        self.evals += 1

    def after_train(self, runner) -> None:
        from mmengine.dist import is_main_process
        if is_main_process():
            with open(osp.join(runner.work_dir, COST), 'w') as f:
                json.dump(dict(train_s=sum(self.iter_s), iters=len(self.iter_s),
                               eval_s=self.eval_s, evals=self.evals,
                               iters_per_epoch=len(runner.train_dataloader)), f)


def with_cost_hook(cfg):
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [dict(type='CostHook')]
    return cfg


@dataclass(frozen=True)
class Rates:
    step_s: float  # one training iteration
    eval_s: float  # one evaluation
    setup_s: float  # the rest of a detector's time: building, loading, uploading
    iters_per_epoch: float


def measured_rates(work_dirs, wall_s: float, extra_evals=()):
    """The rates of a trial that trained in WORK_DIRS (one per detector) in WALL_S seconds,
    with EXTRA_EVALS (seconds of evaluations outside training: the ensemble's); None when
    nothing was timed."""
    costs = []
    for work_dir in work_dirs:
        if osp.isfile(osp.join(work_dir, COST)):
            with open(osp.join(work_dir, COST)) as f:
                costs.append(json.load(f))
    iters = sum(c['iters'] for c in costs)
    if not iters:
        return None
    train_s = sum(c['train_s'] for c in costs)
    eval_s = sum(c['eval_s'] for c in costs) + sum(extra_evals)
    evals = sum(c['evals'] for c in costs) + len(extra_evals)
    return Rates(step_s=train_s / iters, eval_s=eval_s / max(evals, 1),
                 setup_s=max(wall_s - train_s - eval_s, 0.0) / len(costs),
                 iters_per_epoch=costs[0]['iters_per_epoch'])


def log_rates(client, run_id: str, rates: Rates, wall_s: float) -> None:
    from mlflow.entities import Metric
    now = int(time.time() * 1000)
    values = {**{f'cost/{k}': getattr(rates, k) for k in RATES}, 'cost/wall_s': wall_s}
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])


def history(client, experiments, fam: str):
    """The family's rates from its latest finished trial runs, or None; with how many."""
    runs = tracking.search_runs(
        client, experiments, max_results=HISTORY_RUNS, order_by=['attributes.start_time DESC'],
        filter_string=f'tags.{FAMILY} = {tracking.quote(fam)} and attributes.status = '
        f"'FINISHED' and tags.{reuse.REUSED_FROM} IS NULL and metrics.`cost/step_s` > 0")
    if not runs:
        return None, 0
    return Rates(**{k: statistics.median(r.data.metrics[f'cost/{k}'] for r in runs)
                    for k in RATES}), len(runs)


def _quiet():
    """pycocotools prints as it loads and evaluates: the dry run's output stays the tables."""
    return contextlib.redirect_stdout(io.StringIO())


def calibrate(trial, iters: int) -> Rates:
    """The rates of TRIAL's first detector measured here: ITERS + 1 training iterations (the
    first warms up: not counted) and one evaluation of a few val images, scaled to the full val
    set, from random weights, with as many threads as the trial gets CPUs."""
    from argparse import Namespace

    import torch
    from mmengine.registry import DATASETS, init_default_scope

    from prm_rga.train import make_runner, make_synthetic
    if trial.resources.get('GPU') and not torch.cuda.is_available():
        raise InputError('it asks for GPUs and this machine has none to calibrate on')
    cfg = copy.deepcopy(trial.configs[0])
    cfg.pop('synth_backbone', None)
    cfg.model.backbone.init_cfg = None
    make_synthetic(cfg)  # the data set as the trial has it (made once, cached)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    with _quiet():
        full = {split: len(DATASETS.build(copy.deepcopy(cfg[f'{split}_dataloader'].dataset)))
                for split in ('train', 'val')}
    batch = {split: cfg[f'{split}_dataloader'].batch_size for split in ('train', 'val')}
    val_images = min(full['val'], max(batch['val'], CALIBRATION_VAL_IMAGES))
    cfg.merge_from_dict({'train_dataloader.dataset.indices': batch['train'] * (iters + 1),
                         'val_dataloader.dataset.indices': val_images,
                         'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1})
    with_cost_hook(cfg)
    cfg.log_level = 'ERROR'  # the dry run's output stays the tables
    cfg.visualizer.name = f'calibration-{uuid.uuid4().hex[:8]}'  # one per name and process
    threads = torch.get_num_threads()
    torch.set_num_threads(max(int(trial.resources.get('CPU', 1)), 1))
    try:
        with tempfile.TemporaryDirectory() as work_dir, _quiet():
            start = time.perf_counter()
            runner = make_runner(cfg, Namespace(work_dir=work_dir, config=''))
            runner.train()
            wall = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    hook = next(h for h in runner.hooks if isinstance(h, CostHook))
    return Rates(step_s=statistics.median(hook.iter_s[1:]),  # the first one warms up
                 eval_s=hook.eval_s * full['val'] / val_images,
                 setup_s=max(wall - sum(hook.iter_s) - hook.eval_s, 0.0),
                 iters_per_epoch=math.ceil(full['train'] / (batch['train'] * max(
                     trial.resources.get('GPU', 0), 1))))


def _evaluations(train_cfg) -> int:
    """How many times mmengine's epoch loop evaluates over the schedule."""
    epochs, every = train_cfg.get('max_epochs', 1), train_cfg.get('val_interval', 1)
    begin = train_cfg.get('val_begin', 1)
    return sum(1 for e in range(1, epochs + 1) if e >= begin and (e % every == 0 or e == epochs))


def trial_seconds(trial, rates: Rates) -> float:
    seconds = sum(rates.setup_s + rates.step_s * rates.iters_per_epoch
                  * cfg.train_cfg.get('max_epochs', 1) + rates.eval_s * _evaluations(cfg.train_cfg)
                  for cfg in trial.configs)
    return seconds + (rates.eval_s if len(trial.configs) > 1 else 0.0)  # the ensemble's


def wall_time(durations, resources, free: dict, max_concurrent=None) -> float:
    """When the last of the trials (durations in seconds, in Tune's order) ends if each starts
    as soon as its resources are free and fewer than MAX_CONCURRENT run."""
    free, running, now = dict(free), [], 0.0
    for order, (seconds, need) in enumerate(zip(durations, resources)):
        need = {k: v for k, v in need.items() if v}
        while running and (len(running) >= (max_concurrent or math.inf) or any(
                free.get(k, 0) < v for k, v in need.items())):
            now, _, done = heapq.heappop(running)
            for k, v in done.items():
                free[k] = free.get(k, 0) + v
        for k, v in need.items():
            free[k] = free.get(k, 0) - v
        heapq.heappush(running, (now + seconds, order, need))
    return max((end for end, _, _ in running), default=0.0)


@dataclass
class Estimate:
    seconds: dict  # trial name -> seconds, or None where it could not be estimated
    sources: list  # one line per cost family (and Ray's start): where its rates came from
    startup_s: float = 0.0  # from starting Ray Tune to the first trial running

    def known(self, trials) -> list:
        return [t for t in trials if self.seconds.get(t.name) is not None]

    def wall(self, trials, free: dict, max_concurrent=None) -> float:
        known = self.known(trials)
        return self.startup_s * bool(known) + wall_time(
            [self.seconds[t.name] for t in known], [t.resources for t in known], free,
            max_concurrent)

    def hours(self, trials, resource: str) -> float:
        return sum(self.seconds[t.name] * t.resources.get(resource, 0)
                   for t in self.known(trials)) / 3600


def startup(client, experiments, calibrate: bool):
    """Seconds from starting Ray Tune to the first trial running (Ray's worker processes,
    their imports), with where they came from: the median of the latest launches in the store
    (``cost/startup_s`` of parent runs), else, when CALIBRATE, a fresh process importing what a
    trial's worker imports, timed here."""
    runs = tracking.search_runs(
        client, experiments, max_results=HISTORY_RUNS, order_by=['attributes.start_time DESC'],
        filter_string='metrics.`cost/startup_s` > 0') if experiments else []
    if runs:
        seconds = statistics.median(r.data.metrics['cost/startup_s'] for r in runs)
        return seconds, f'Ray Tune\'s start: {seconds:.0f} s, median of {len(runs)} launch(es)'
    if not calibrate:
        return 0.0, 'Ray Tune\'s start: not counted (no launch in the store, no calibration)'
    start = time.perf_counter()
    subprocess.run([sys.executable, '-c', 'import ray.tune, experiments.launcher'], check=True,
                   cwd=osp.dirname(osp.dirname(osp.abspath(__file__))))
    seconds = time.perf_counter() - start
    return seconds, (f'Ray Tune\'s start: {seconds:.0f} s, a fresh process importing what a '
                     'trial imports, timed here (no launch in the store)')


def _rates_text(rates: Rates) -> str:
    return (f'{rates.step_s:.3f} s a step, {rates.eval_s:.1f} s an evaluation, '
            f'{rates.setup_s:.1f} s of setup')


class Estimator:
    """The estimates of one command: each cost family's rates (its finished runs in the store
    CLIENT, or None: no store to read; else a calibration of CALIBRATE_ITERS iterations, 0:
    none) and Ray Tune's start are found once, however many suites of the command share them."""

    def __init__(self, client, calibrate_iters: int):
        self.client, self.calibrate_iters = client, calibrate_iters
        self.experiments = reuse.experiment_ids(client) if client is not None else []
        self.found = {}  # cost family -> (rates or None, where from, where from said again)
        self.start = None  # Ray Tune's start: (seconds, where from)

    def _rates(self, fam: str, what: str, first):
        """FAM's rates and where they came from; a family calibrated for an earlier suite of
        the command says so instead of calibrating again."""
        if fam in self.found:
            rates, _, again = self.found[fam]
            return rates, again
        rates, runs = history(self.client, self.experiments, fam) if self.experiments else (
            None, 0)
        if rates is not None:
            how = again = f'rates of {runs} finished run(s) of the family in the store'
        elif self.calibrate_iters > 0:
            print(f'{what}: no history of their cost family in the store; calibrating here',
                  flush=True)
            start = time.perf_counter()
            try:
                rates = calibrate(first, self.calibrate_iters)
                how = (f'no history; calibrated here in {time.perf_counter() - start:.1f} s '
                       f'({self.calibrate_iters} training iterations timed after a warm-up one, '
                       f'one evaluation of a few val images): {_rates_text(rates)}')
                again = f'no history; the calibration above, on {first.name}: {_rates_text(rates)}'
            except Exception as err:  # the estimate must not stop a launch; the trial will tell
                how = again = (f'no history and the calibration failed '
                               f'({type(err).__name__}: {str(err).splitlines()[0][:200]})')
        else:
            how = again = 'no history and no calibration (--calibrate-iters 0)'
        self.found[fam] = rates, how, again
        return rates, how

    def estimate(self, trials) -> Estimate:
        """The time of each of TRIALS to train."""
        if not trials:
            return Estimate({}, [])
        families = {}
        for trial in trials:
            families.setdefault(family(trial), []).append(trial)
        seconds, sources = {}, []
        for fam, members in families.items():
            what = f'{len(members)} trial(s) like {members[0].name}'
            rates, how = self._rates(fam, what, members[0])
            sources.append(f'{what}: {how}')
            for trial in members:
                seconds[trial.name] = None if rates is None else trial_seconds(trial, rates)
        if self.start is None:
            self.start = startup(self.client, self.experiments, self.calibrate_iters > 0)
        startup_s, line = self.start
        return Estimate(seconds, sources + [line], startup_s)
