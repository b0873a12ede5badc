"""`prm-rga suite run`: the trials of a suite on Ray Tune, each tracked as an MLflow child run.

One Tune experiment per launch (`Tuner` over ``tune.grid_search`` of the trial names, per-trial
resources with ``tune.with_resources``); one MLflow parent run per launch and one child run per
trial, created by the trial when it first starts and reused by every later attempt, so a resumed
suite still has exactly one run per trial. MLflow is the record of launches: ``--resume`` finds
the last launch of the suite there and restores its Tune experiment. A trial that already
finished (its child run FINISHED) never trains again, even if Tune did not record it before the
driver died. Trial checkpoints go to Tune's storage path, so a killed trial continues from its
last epoch on any node.
"""
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import ray
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.file_utils import ExclusiveFileLock
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import find_latest_checkpoint
from ray import tune

from experiments import estimate, mlflow_backend, notes, reuse, suites, tracking
from prm_rga_errors import InputError, check_creatable_dir
from prm_rga.pretrained import ENV as PRETRAINED_ENV
from prm_rga.pretrained import check_pretrained


@dataclass(frozen=True)
class Launch:
    """What each trial needs to know about its launch (sent to the workers)."""
    name: str  # Tune experiment name, also the trials' work dir folder
    suite: str
    scale: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    work_root: str
    flush_interval: float
    log_checkpoint: bool = True  # the final checkpoint goes to the run (suites.logs_checkpoint)


def safe_name(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9._=-]+', '_', name)


# --- MLflow runs -----------------------------------------------------------------------------

def find_child_run(client, launch: Launch, trial_name: str):
    runs = tracking.search_runs(
        client, [launch.experiment_id],
        filter_string=f'tags.`mlflow.parentRunId` = {tracking.quote(launch.parent_run_id)} '
        f'and tags.trial = {tracking.quote(trial_name)}',
        order_by=['attributes.start_time DESC'], max_results=1)
    return runs[0] if runs else None


def child_runs(client, experiment_id: str, parent_run_id: str) -> dict:
    """The trial runs of one launch, by trial name: all of them, however many pages."""
    runs = tracking.search_runs(
        client, [experiment_id],
        filter_string=f'tags.`mlflow.parentRunId` = {tracking.quote(parent_run_id)}')
    return {run.data.tags['trial']: run for run in runs}


def start_child_run(client, launch: Launch, trial):
    """The trial's child run, created on its first attempt and reopened on later ones."""
    run = find_child_run(client, launch, trial.name)
    if run is None:
        run = client.create_run(launch.experiment_id, run_name=trial.name, tags={
            'mlflow.parentRunId': launch.parent_run_id, 'suite': launch.suite,
            'trial': trial.name, 'scale': launch.scale, estimate.FAMILY: estimate.family(trial),
            notes.NOTE: notes.child_note(launch, trial.name)})
        client.log_batch(run.info.run_id,
                         params=[Param(k, str(v)) for k, v in trial.params.items()])
    elif run.info.status != 'FINISHED':
        client.update_run(run.info.run_id, status='RUNNING')
        if 'error' in run.data.tags:
            client.delete_tag(run.info.run_id, 'error')
    if run.info.status != 'FINISHED':
        import torch
        context = ray.get_runtime_context()
        client.log_batch(run.info.run_id, tags=[
            RunTag('node', ray.util.get_node_ip_address()),
            RunTag('node_id', context.get_node_id()),
            RunTag(tracking.TORCH_THREADS, str(torch.get_num_threads()))])
    return run


# --- one trial, on a Ray worker ---------------------------------------------------------------

@HOOKS.register_module()
class TuneReportHook(Hook):
    """Reports validation metrics to Ray Tune and every checkpoint mmengine saves as a Tune
    checkpoint (with the final checkpoints of the members trained before), so that a killed
    trial resumes from its last epoch wherever Tune restarts it. Each report carries the
    trial's ``progress``, the share of its iterations done (member ``index`` of ``members``),
    for the launch's ETA."""
    priority = 'LOWEST'  # after CheckpointHook has written the epoch's checkpoint

    def __init__(self, member: str = '', done: dict = None, index: int = 0, members: int = 1):
        self.member, self.done = member, dict(done or {})
        self.index, self.members = index, members
        self._reported = None

    def _progress(self, runner) -> float:
        return (self.index + runner.iter / max(runner.max_iters, 1)) / self.members

    def after_train_epoch(self, runner) -> None:
        path = find_latest_checkpoint(runner.work_dir)
        if not path or path == self._reported:
            return
        # the run holds every step up to this checkpoint before Tune may resume from it (a
        # SIGKILL loses the points not yet sent, and a resume does not train those steps again)
        runner.visualizer.get_backend('MlflowRunBackend').flush()
        with tempfile.TemporaryDirectory() as tmp:
            for member, src in {**self.done, self.member: path}.items():
                dst = osp.join(tmp, member or '.', osp.basename(src))
                os.makedirs(osp.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
            tune.report({'epoch': runner.epoch + 1, 'member': self.member,
                         'progress': self._progress(runner)},
                        checkpoint=tune.Checkpoint.from_directory(tmp))
        self._reported = path

    def after_val_epoch(self, runner, metrics=None) -> None:
        scalars = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
        tune.report({'epoch': runner.epoch, 'member': self.member,
                     'progress': self._progress(runner),
                     **tracking.metric_names(scalars)})


def _restore_checkpoints(work_dir: str) -> dict:
    """Unpacks the trial's last Tune checkpoint into its work dir: member -> checkpoint path."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return {}
    restored = {}
    with checkpoint.as_directory() as folder:
        for root, _, files in os.walk(folder):
            for name in files:
                member = osp.relpath(root, folder)
                member = '' if member == '.' else member
                dst_dir = osp.join(work_dir, member)
                os.makedirs(dst_dir, exist_ok=True)
                shutil.copyfile(osp.join(root, name), osp.join(dst_dir, name))
                with open(osp.join(dst_dir, 'last_checkpoint'), 'w') as f:
                    f.write(osp.join(dst_dir, name))
                restored[member] = osp.join(dst_dir, name)
    return restored


def _train_member(cfg, work_dir, launch, run_id, member, restored, done, processes=1,
                  members=1):
    """Trains one config, logging to the trial's run; returns its last checkpoint. With
    ``processes`` > 1 (a trial given k GPUs) it trains data-parallel in k processes of this
    node (mmengine's pytorch launcher; rank 0 logs to MLflow). The config is saved as the run
    will keep it before the launcher adds its hook, backend and resume settings, so that it
    loads anywhere `import prm_rga` does (`prm-rga train|test`, mmdet's tools)."""
    cfg = with_eval_records(copy.deepcopy(cfg))
    os.makedirs(work_dir, exist_ok=True)
    cfg.dump(osp.join(work_dir, 'config.py'))
    estimate.with_cost_hook(cfg)
    prefix = f'{member}/' if member else ''
    # mmengine keeps one visualizer per name and process
    cfg.visualizer.name = f'{safe_name(member or "trial")}-{uuid.uuid4().hex[:8]}'
    cfg.visualizer.vis_backends = list(cfg.visualizer.get('vis_backends') or []) + [dict(
        type='MlflowRunBackend', tracking_uri=launch.tracking_uri, run_id=run_id,
        prefix=prefix, flush_interval=launch.flush_interval)]
    if member in restored:
        cfg.resume, cfg.load_from = True, None  # from work_dir/last_checkpoint
    if processes > 1:
        import torch.multiprocessing as mp
        cfg.launcher = 'pytorch'
        mp.spawn(_train_rank, args=(processes, _free_port(), cfg, work_dir), nprocs=processes)
    else:  # in the Tune session: report epochs and checkpoints as they come
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='TuneReportHook', member=member, done=done, index=len(done),
                 members=members)]
        _train(cfg, work_dir)
    return find_latest_checkpoint(work_dir)


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _train_rank(rank: int, world_size: int, port: int, cfg, work_dir: str) -> None:
    """One process of a data-parallel trial. The process group is made here (NCCL on GPUs,
    gloo on CPUs), so mmengine's pytorch launcher finds it ready and only wraps the model."""
    import torch
    import torch.distributed as dist

    import prm_rga  # noqa: F401  (registers the plugins in this process)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    if torch.cuda.is_available():
        torch.cuda.set_device(rank)
    elif 'model_wrapper_cfg' not in cfg:  # mmengine's default wrapper pins a GPU per rank
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False)
    dist.init_process_group('nccl' if torch.cuda.is_available() else 'gloo',
                            init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=world_size)
    try:
        _train(cfg, work_dir)
    finally:
        dist.destroy_process_group()


def _train(cfg, work_dir: str) -> None:
    from argparse import Namespace

    from prm_rga.train import make_runner
    check_pretrained(cfg)
    runner = make_runner(cfg, Namespace(work_dir=work_dir, config=''))
    try:
        runner.train()
    except BaseException:
        try:
            runner.visualizer.close()  # deliver what was logged before the error
        except mlflow_backend.TrackingError:
            pass  # the training error is the one to report
        raise


def with_eval_records(cfg):
    """Tracked trials keep their final evaluation per image (``eval_records.npz``,
    prm_rga_eval.records) for the report's confidence intervals."""
    hooks = list(cfg.get('custom_hooks', []))
    if not any(h.get('type') == 'EvalRecordHook' for h in hooks):
        cfg.custom_hooks = hooks + [dict(type='EvalRecordHook')]
    return cfg


def _evaluate_ensemble(trial, checkpoints, work_dir, client, run_id) -> dict:
    from argparse import Namespace

    from experiments.suites import ensemble_config
    from prm_rga.train import make_runner
    cfg = with_eval_records(ensemble_config(list(trial.configs), checkpoints))
    os.makedirs(work_dir, exist_ok=True)
    cfg.dump(osp.join(work_dir, 'config.py'))
    cfg.visualizer.name = f'ensemble-{uuid.uuid4().hex[:8]}'
    runner = make_runner(cfg, Namespace(work_dir=work_dir, config=''))
    scalars = {k: float(v) for k, v in runner.test().items() if isinstance(v, (int, float))}
    metrics = tracking.without_empty_buckets({
        ('val/' + k.split('/', 1)[1] if '/' in k else 'val/' + k): v for k, v in scalars.items()})
    step, now = trial.configs[0].train_cfg.max_epochs, int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])
    return metrics


def run_trial(config: dict, trials: dict, launch: Launch) -> None:
    """The Tune trainable: trains the trial's config(s) and tracks them in its child run, with
    the rates its time was spent at (estimate.measured_rates) for later estimates."""
    import prm_rga  # noqa: F401  (registers the plugins in this worker)
    started = time.monotonic()
    trial = trials[config['trial']]
    client = MlflowClient(launch.tracking_uri)
    run = start_child_run(client, launch, trial)
    run_id = run.info.run_id
    if run.info.status == 'FINISHED':  # finished before the driver died: never train again
        tune.report({'done': True, **run.data.metrics})
        return
    work_dir = osp.join(launch.work_root, launch.name, safe_name(trial.name))
    try:
        os.makedirs(work_dir, exist_ok=True)
        restored = _restore_checkpoints(work_dir)
        members = [''] if len(trial.configs) == 1 else [f'm{i}' for i in range(len(trial.configs))]
        done = {}
        for member, cfg in zip(members, trial.configs):
            member_dir = osp.join(work_dir, member)
            done[member] = _train_member(cfg, member_dir, launch, run_id, member, restored, done,
                                         processes=max(trial.resources.get('GPU', 0), 1),
                                         members=len(members))
            tracking.log_run_artifacts(client, run_id, member_dir, member,
                                       done[member] if launch.log_checkpoint else None)
        final, extra_evals = {}, []
        if len(trial.configs) > 1:
            evaluating = time.monotonic()
            final = _evaluate_ensemble(trial, [done[m] for m in members],
                                       osp.join(work_dir, 'ensemble'), client, run_id)
            extra_evals.append(time.monotonic() - evaluating)
            tracking.log_run_artifacts(client, run_id, osp.join(work_dir, 'ensemble'))
        wall = time.monotonic() - started
        rates = estimate.measured_rates([osp.join(work_dir, m) for m in members], wall,
                                        extra_evals)
        if rates is not None:
            estimate.log_rates(client, run_id, rates, wall)
        client.set_terminated(run_id, 'FINISHED')
    except BaseException as err:
        node = ray.util.get_node_ip_address()  # a path missing on one node is told apart
        tracking.fail_run(client, run_id, f'{type(err).__name__}: {err} (node {node})')
        raise
    tune.report({'done': True, **final})


# --- the driver -------------------------------------------------------------------------------

def _fmt_resources(resources: dict) -> str:
    return ', '.join(f'{v:g} {k}' for k, v in sorted(resources.items()) if v) or 'nothing'


def print_trials(suite, trials, plan, est, free: dict, max_concurrent=None) -> None:
    """The trials, what each asks for and is estimated to take (or the run it reuses), and the
    suite's estimated wall time and CPU-/GPU-hours on the FREE resources."""
    width = max(len(t.name) for t in trials)
    asks = {t.name: _fmt_resources(t.resources) for t in trials}
    column = max(len(a) for a in asks.values())
    reused = len(plan.reused) + len(plan.earlier)
    print(f'suite {suite.name}: {len(trials)} trials, {reused} reused' + (
        f' ({len(plan.earlier)} trained by an earlier suite of this command)'
        if plan.earlier else ''))
    print(f'  {"trial":<{width}}  {"resources":<{column}}  estimate')
    for trial in trials:
        source, seconds = plan.reused.get(trial.name), est.seconds.get(trial.name, False)
        earlier = plan.earlier.get(trial.name)
        cost = (f'reused: run {source.info.run_id} of suite {source.data.tags.get("suite")}'
                if source else f'reused: trained by suite {earlier} earlier in this command'
                if earlier else '?' if seconds is None
                else 'finished in this launch' if seconds is False else _elapsed(seconds))
        print(f'  {trial.name:<{width}}  {asks[trial.name]:<{column}}  {cost}')
    to_train = [t for t in trials if t.name in est.seconds]
    total = Counter()
    for trial in to_train:
        total.update({k: v for k, v in trial.resources.items() if v})
    print(f'  total if all ran at once: {_fmt_resources(total)}')
    if not to_train:
        print(f'estimate: nothing to train; {reused} reused trials at cost 0')
        return
    missing = len(to_train) - len(est.known(to_train))
    print(f'estimate: {_elapsed(est.wall(to_train, free, max_concurrent))} wall on '
          f'{_fmt_resources(free)} free'
          + (f', at most {max_concurrent} at once' if max_concurrent else '')
          + f'; {est.hours(to_train, "CPU"):.2f} CPU-hours, {est.hours(to_train, "GPU"):.2f} '
          f'GPU-hours; {reused} reused trials at cost 0'
          + (f'; {missing} trials not estimated, not counted' if missing else ''))
    for line in est.sources:
        print(f'  {line}')


def print_total(planned, plans, ests, free: dict, max_concurrent=None) -> None:
    """The cost of the suites of PLANNED launched one after the other (as `make reproduce`
    does), each config trained once: a line per suite (its PLANS and ESTS), then the sum."""
    rows = []
    for (suite, trials), plan, est in zip(planned, plans, ests):
        to_train = plan.to_train(trials)
        rows.append(dict(
            suite=suite.name, trials=len(trials), reused=len(plan.reused),
            earlier=len(plan.earlier), train=len(to_train),
            done=len(trials) - len(plan.reused) - len(plan.earlier) - len(to_train),
            unknown=len(to_train) - len(est.known(to_train)),
            wall=est.wall(to_train, free, max_concurrent),
            cpu=est.hours(to_train, 'CPU'), gpu=est.hours(to_train, 'GPU')))
    total = {k: sum(row[k] for row in rows) for k in rows[0] if k != 'suite'}
    width = max(len(row['suite']) for row in rows + [dict(suite='suite')])
    print(f'total of the {len(rows)} suites, launched one after the other (reused: from the '
          'store; earlier: trained by an earlier suite of this command; done: finished in the '
          'launch continued):')
    print(f'  {"suite":<{width}}  trials  reused  earlier  done  train  estimate')
    for row in rows:
        print(f'  {row["suite"]:<{width}}  {row["trials"]:>6}  {row["reused"]:>6}  '
              f'{row["earlier"]:>7}  {row["done"]:>4}  {row["train"]:>5}  '
              f'{_elapsed(row["wall"])}'
              + (f' + {row["unknown"]} not estimated' if row['unknown'] else ''))
    print(f'estimate: {_elapsed(total["wall"])} wall on {_fmt_resources(free)} free'
          + (f', at most {max_concurrent} at once' if max_concurrent else '')
          + f'; {total["cpu"]:.2f} CPU-hours, {total["gpu"]:.2f} GPU-hours; {total["train"]} '
          f'of {total["trials"]} trials to train, {total["reused"]} reused from the store, '
          f'{total["earlier"]} trained by an earlier suite of this command'
          + (f', {total["done"]} finished in the launches continued' if total['done'] else '')
          + (f'; {total["unknown"]} trials not estimated, not counted'
             if total['unknown'] else ''))


def _size(nbytes: float) -> str:
    return f'{nbytes / 2**30:.1f} GiB' if nbytes >= 2**30 else f'{nbytes / 2**20:.1f} MiB'


def checkpoint_note(trials, logged: bool) -> str:
    """What the trials' final checkpoints would add to the tracking store (the weights, as
    logged: tracking.log_run_artifacts), so that a lab can set `log_checkpoint` knowingly."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    sizes, total = {}, 0
    for cfg in (cfg for trial in trials for cfg in trial.configs):
        arch = {k: v for k, v in cfg.model.to_dict().items() if k not in ('train_cfg', 'test_cfg')}
        key = json.dumps(arch, sort_keys=True, default=str)  # the weights' shapes, no more
        if key not in sizes:
            init_default_scope(cfg.get('default_scope', 'mmdet'))  # as the Runner does
            state = MODELS.build(cfg.model).state_dict()
            sizes[key] = sum(t.numel() * t.element_size() for t in state.values())
        total += sizes[key]
    sizes = f'{_size(total / len(trials))} a trial, {_size(total)} for the {len(trials)} trials'
    if logged:
        return f'checkpoints: each trial logs its final weights to its MLflow run ({sizes})'
    return (f'checkpoints: not logged to MLflow ({sizes}; `log_checkpoint: true` under '
            '`scales.paper` in the suite file logs them); they stay in the trial work dirs')


def check_resources(trials, nodes, cluster: dict) -> None:
    """Every trial fits on one alive node of the cluster; else it would stay pending forever."""
    capacities = [node['Resources'] for node in nodes if node.get('Alive')]
    for trial in trials:
        need = {k: v for k, v in trial.resources.items() if v}
        if not any(all(cap.get(k, 0) >= v for k, v in need.items()) for cap in capacities):
            largest = ['{' + _fmt_resources({k: c.get(k, 0) for k in ('CPU', 'GPU')}) + '}'
                       for c in capacities]
            raise InputError(
                f'trial {trial.name} asks for {_fmt_resources(need)}, more than any node of the '
                f'Ray cluster has: nodes {", ".join(largest)}; cluster total '
                f'{_fmt_resources({k: cluster.get(k, 0) for k in ("CPU", "GPU")})}. Lower the '
                'suite\'s resources or join a larger cluster with --address')


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class Progress(tune.Callback):
    """One line per change (or every ``every`` s): trials done / running / failed, elapsed time
    and the time left: Tune's schedule (estimate.wall_time) of what is left of each trial,
    a running one's at its own pace once it reported ``progress`` (share of its iterations),
    else its estimate less the time it has run, and before any runs what is left of Ray
    Tune's estimated start; at the pace of this launch when a trial has no estimate. Pickled
    with the Tune experiment, so its clock restarts in ``setup`` when a suite is resumed."""

    def __init__(self, title: str, est, needs: dict, free: dict, max_concurrent=None,
                 every: float = 30.0):
        self.title, self.seconds, self.startup_s = title, est.seconds, est.startup_s
        self.needs = needs
        self.free, self.max_concurrent, self.every = free, max_concurrent, every

    def setup(self, **info):
        self.start, self.last, self.shown, self.initial = time.monotonic(), 0.0, None, None
        self.running_since = {}

    def _left(self, trial, now: float):
        """Seconds TRIAL has left, or None when nothing tells."""
        seconds = self.seconds.get(trial.config['trial'])
        if trial.status != 'RUNNING':
            return seconds
        ran = now - self.running_since.setdefault(trial.trial_id, now)
        done = (trial.last_result or {}).get('progress') or 0
        if done > 0:
            return ran * (1 - done) / done
        return None if seconds is None else max(seconds - ran, 0.0)

    def on_step_end(self, iteration, trials, **info):
        counts = Counter(t.status for t in trials)
        done, failed, running = counts['TERMINATED'], counts['ERROR'], counts['RUNNING']
        if self.initial is None:
            self.initial = done + failed
        now = time.monotonic()
        left = [t for t in trials if t.status not in ('TERMINATED', 'ERROR')]
        # running trials first: they hold their resources now
        left.sort(key=lambda t: t.status != 'RUNNING')
        times = [self._left(t, now) for t in left]
        if (done, failed, running) == self.shown and now - self.last < self.every:
            return
        elapsed, finished_here = now - self.start, done + failed - self.initial
        if None not in times:
            starting = 0.0 if self.running_since else max(self.startup_s - elapsed, 0.0)
            eta = _elapsed(starting + estimate.wall_time(
                times, [self.needs[t.config['trial']] for t in left], self.free,
                self.max_concurrent))
        else:
            eta = _elapsed(elapsed / finished_here * len(left)) if finished_here else '?'
        print(f'[{self.title}] {done}/{len(trials)} done, {running} running, {failed} failed | '
              f'elapsed {_elapsed(elapsed)}, ETA {eta}', flush=True)
        self.shown, self.last = (done, failed, running), now


def _init_ray(address: str) -> None:
    """A private local Ray by default; joining a cluster ships this project's packages to its
    workers (Ray's runtime_env), which need only the same Python environment, and the
    driver's pretrained-weights folder, which must be at the same path on every worker."""
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level='warning')
    address = address or 'local'
    if address != 'local' and os.environ.get(PRETRAINED_ENV):
        kwargs['runtime_env'] = {'env_vars': {PRETRAINED_ENV: os.environ[PRETRAINED_ENV]}}
    if address not in ('local', 'auto'):
        import experiments
        import prm_rga
        kwargs.setdefault('runtime_env', {})['py_modules'] = [
            osp.dirname(prm_rga.__file__), osp.dirname(experiments.__file__)]
    # Private Rays started together come up one at a time: on a busy machine several at once
    # take longer than Ray's fixed 30 s wait for a new node ("timed out during startup")
    lock = contextlib.nullcontext() if address != 'local' else ExclusiveFileLock(
        osp.join(tempfile.gettempdir(), f'prm-rga-ray-start-{os.getuid()}.lock'))
    try:
        with lock:
            ray.init(address=address, **kwargs)
    except ConnectionError as err:
        raise InputError(f'--address {address}: cannot join a Ray cluster there ({err})') from err


def _check_reachable(address, timeout: float = 10.0) -> None:
    """A HOST:PORT address answers (Ray retries an unreachable head for minutes; a closed port
    is told at once); local and auto need no check."""
    if address in (None, 'local', 'auto'):
        return
    host, _, port = address.rpartition(':')
    if not host or not port.isdigit():
        raise InputError(f'--address {address}: use local, auto or HOST:PORT of a Ray head')
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise InputError(f'--address {address}: no Ray head answers there ({err}); start one '
                         'with `ray start --head --port PORT` or leave --address out for a '
                         'private local Ray') from err


def _last_launch(client, experiment_id: str, suite: str, scale: str):
    runs = tracking.search_runs(
        client, [experiment_id], max_results=1, order_by=['attributes.start_time DESC'],
        filter_string=f'tags.suite = {tracking.quote(suite)} and '
        f"tags.scale = {tracking.quote(scale)} and tags.tune_experiment LIKE '%'")
    return runs[0] if runs else None


def make_synthetic_once(trials) -> None:
    """The synthetic sets and pretrained backbones of the trials, made here with every core
    before any trial starts, rather than by the first trial on one core while the others wait
    (a trial still makes what is missing on its node)."""
    from prm_rga.train import make_synthetic
    done = []
    for cfg in (cfg for trial in trials for cfg in trial.configs):
        spec = (cfg.get('synth_data'), cfg.get('synth_backbone'))
        if any(spec) and spec not in done:
            make_synthetic(cfg)
            done.append(spec)


@dataclass
class Plan:
    """What a launch will do, read from the store before anything is written: the launch to
    continue (``--resume``), its trial runs, the trials reused (name -> source run) and, in a
    dry run of several suites, those an earlier suite of it trains (name -> that suite), and
    the launch's name (its parent run's, its Tune experiment's and its work dir's)."""
    experiment_id: str = None
    parent: object = None
    name: str = None
    runs: dict = field(default_factory=dict)
    reused: dict = field(default_factory=dict)
    earlier: dict = field(default_factory=dict)

    def to_train(self, trials) -> list:
        """The trials Ray Tune runs: not reused, not trained by an earlier suite, not finished
        in the launch continued."""
        finished = {name for name, run in self.runs.items() if run.info.status == 'FINISHED'}
        return [t for t in trials if t.name not in self.reused and t.name not in self.earlier
                and t.name not in finished]


def plan_launch(client, uri: str, suite, trials, args, earlier=None) -> Plan:
    """Reads the store only: with ``--resume`` the last launch (refused when it is missing or
    its trials changed), its reuse records; the trials without a run in it are looked up by
    content unless ``--no-reuse``: in the store (reuse.find_sources), else in EARLIER
    (config_hash -> the suite before this one in a dry run of several that trains it)."""
    experiment = client.get_experiment_by_name(suite.name) if client else None
    plan = Plan(experiment and experiment.experiment_id)
    if args.resume:
        if experiment is not None:
            plan.parent = _last_launch(client, plan.experiment_id, suite.name, args.scale)
        if plan.parent is None:
            raise InputError(f'--resume: no earlier launch of suite {suite.name} at scale '
                             f'{args.scale} in {uri}')
        _check_same_trials(client, plan.experiment_id, plan.parent, trials)
        plan.runs = child_runs(client, plan.experiment_id, plan.parent.info.run_id)
        recorded = {name: run.data.tags[reuse.REUSED_FROM] for name, run in plan.runs.items()
                    if reuse.REUSED_FROM in run.data.tags}
        sources = reuse.runs_by_id(client, recorded.values())
        plan.reused = {name: sources[src] for name, src in recorded.items() if src in sources}
        plan.name = plan.parent.data.tags['tune_experiment'].rstrip('/').rsplit('/', 1)[-1]
    else:
        plan.name = (f'{suite.name}-{args.scale}-{time.strftime("%Y%m%d-%H%M%S")}-'
                     f'{uuid.uuid4().hex[:8]}')
    if args.no_reuse:
        return plan
    lookup = [t for t in trials if t.name not in plan.runs]
    if client is not None:
        plan.reused.update(reuse.find_sources(client, lookup))
    earlier = earlier or {}
    plan.earlier = {t.name: earlier[t.params['config_hash']] for t in lookup
                    if t.name not in plan.reused and t.params['config_hash'] in earlier}
    return plan


def _readable_store(uri: str):
    """A client on URI for a dry run, or None when there is nothing to read (no SQLite file, a
    server that does not answer): a dry run creates nothing."""
    if uri.startswith('sqlite:///') and not osp.isfile(uri[len('sqlite:///'):]):
        return None
    try:
        tracking.check_tracking_uri(uri)
    except InputError as err:
        print(f'{err}: reuse not looked up')
        return None
    return MlflowClient(uri)


def check_trials(suite, trials) -> None:
    """The suite has trials, each named once, each with its pretrained weights readable here
    (on the driver, before any run exists; workers check again)."""
    if not trials:
        raise InputError(f'suite {suite.name}: no trials to run')
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise InputError(f'suite {suite.name}: trial names repeat: {sorted(names)}')
    for trial in trials:
        for cfg in trial.configs:
            check_pretrained(cfg, f'trial {trial.name}: ')


def dry_run(planned, args) -> int:
    """Prints what launching each (suite, trials) of PLANNED, one after the other, would do and
    cost, and with several suites their total: a trial whose config an earlier suite of them
    trains counts as reused, and each cost family is estimated once. Writes nothing."""
    for suite, trials in planned:
        check_trials(suite, trials)
    uri = args.tracking_uri or tracking.default_tracking_uri()
    _check_reachable(args.address)  # refused even with nothing to train
    client = _readable_store(uri)
    plans, trained_by = [], {}  # config_hash -> the first suite that trains it
    for suite, trials in planned:
        plans.append(plan_launch(client, uri, suite, trials, args, trained_by))
        for trial in plans[-1].to_train(trials):
            trained_by.setdefault(trial.params['config_hash'], suite.name)
    free = _local_resources()
    if trained_by and args.address not in (None, 'local'):  # the cluster's, as a launch sees
        _init_ray(args.address)
        free = _free_resources()
        ray.shutdown()
    estimator, ests = estimate.Estimator(client, args.calibrate_iters), []
    for (suite, trials), plan in zip(planned, plans):
        to_train = plan.to_train(trials)
        ests.append(estimator.estimate(to_train))
        print_trials(suite, trials, plan, ests[-1], free, args.max_concurrent)
        if to_train:
            print(checkpoint_note(to_train, suites.logs_checkpoint(suite, args.scale)))
    if len(planned) > 1:
        print_total(planned, plans, ests, free, args.max_concurrent)
    return 0


def run_suite(suite, trials, args) -> int:
    """Runs (or with ``args.resume`` continues) the suite; 0 when every trial finished.

    ``args``: scale, dry_run, address, tracking_uri, max_concurrent, resume, no_reuse,
    calibrate_iters, storage_path, work_dir, max_failures, flush_interval (argparse defaults in
    experiments.cli), and command_line (set by the dispatcher; written on the launch's parent
    run)."""
    if args.dry_run:
        return dry_run([(suite, trials)], args)
    check_trials(suite, trials)
    uri = args.tracking_uri or tracking.default_tracking_uri()
    _check_reachable(args.address)  # refused even with nothing to train
    tracking.check_tracking_uri(uri)
    _check_storage(_storage(args))
    check_creatable_dir(_work_root(args), '--work-dir')
    client = MlflowClient(uri)
    plan = plan_launch(client, uri, suite, trials, args)
    with driver_lock(plan.name):
        to_train = plan.to_train(trials)
        if not to_train:
            print_trials(suite, trials, plan, estimate.Estimate({}, []), {})
            return _launch(suite, trials, args, client, uri, plan, estimate.Estimate({}, []), {})
        make_synthetic_once(to_train)
        check_trial_data(to_train)
        _init_ray(args.address)
        try:
            check_resources(to_train, ray.nodes(), ray.cluster_resources())
            free = _free_resources()
            est = estimate.Estimator(client, args.calibrate_iters).estimate(to_train)
            print_trials(suite, trials, plan, est, free, args.max_concurrent)
            return _launch(suite, trials, args, client, uri, plan, est, free)
        finally:
            ray.shutdown()


@contextlib.contextmanager
def driver_lock(name: str):
    """Held by the driver of launch NAME while it runs, so that a ``--resume`` of it from another
    process on this machine refuses instead of training its trials a second time beside it. The
    OS lets go of it when the driver ends, SIGKILL included, so a dead launch resumes. It lies in
    the temporary folder, so that a launch refused later for its input leaves no folder behind."""
    folder = osp.join(tempfile.gettempdir(), 'prm-rga-drivers')
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, f'{name}.lock')
    with open(path, 'a+') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise InputError(f'--resume: launch {name} is still running ({f.read().strip()}, '
                             f'holding {path}); wait for it to end or stop it, then resume'
                             ) from None
        f.truncate(0)
        f.write(f'its driver is process {os.getpid()} on {socket.gethostname()}')
        f.flush()
        yield


def _storage(args) -> str:
    """Where the launch's Tune experiments go: a URI as given, a local path made absolute."""
    storage = args.storage_path or osp.join('outputs', 'tune')
    return storage if '://' in storage else osp.abspath(storage)


def _work_root(args) -> str:
    return osp.abspath(args.work_dir or osp.join('work_dirs', 'suites'))


def _check_storage(uri: str) -> None:
    """The storage path is a folder that can be made (local), or a URI of a file system pyarrow
    (Ray Tune's storage layer) reaches, naming no file there; else Tune fails after the launch
    is recorded."""
    if '://' not in uri:
        check_creatable_dir(uri, '--storage-path')
        return
    import pyarrow.fs
    try:
        fs, path = pyarrow.fs.FileSystem.from_uri(uri)
        info = fs.get_file_info(path)
    except (pyarrow.ArrowException, OSError, ValueError) as err:
        raise InputError(f'--storage-path {uri}: not reachable ({err})') from err
    if info.type == pyarrow.fs.FileType.File:
        raise InputError(f'--storage-path {uri}: is a file, not a folder')


def check_trial_data(trials) -> None:
    """Every annotation file and image folder of every trial, checked here on the driver before
    anything is recorded (workers check again: they need the data at the same paths); each
    distinct dataset once, however many trials share it."""
    from prm_rga.train import check_dataset, data_files
    seen = set()
    for trial in trials:
        for cfg in trial.configs:
            for name, dataset, path in data_files(cfg):
                key = (name, path, json.dumps(dataset and dataset.to_dict(), sort_keys=True,
                                               default=str))
                if key not in seen:
                    seen.add(key)
                    try:
                        check_dataset(name, dataset, path)
                    except InputError as err:
                        raise InputError(f'trial {trial.name}: {err}') from None


def _local_resources() -> dict:
    """What a private local Ray would find free: this machine's CPUs and GPUs."""
    import torch
    return {'CPU': os.cpu_count() or 1, 'GPU': torch.cuda.device_count()}


def _free_resources() -> dict:
    return {k: v for k, v in ray.available_resources().items() if k in ('CPU', 'GPU')}


TRIAL_SET = 'trial_set'  # on a launch's parent run: trial_set() of the trials it was made for


def trial_set(trials) -> str:
    """The trials of a launch, as 12 hex digits of their names and config hashes."""
    text = json.dumps(sorted((t.name, t.params['config_hash']) for t in trials))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _check_same_trials(client, experiment_id: str, parent, trials) -> None:
    """--resume continues the trials of the last launch: if the suite file, its seeds, a config
    or the code changed since, continuing would mix two experiments in one run (and Ray Tune
    restores only the trials it had: one added since would never run), so that is refused. A
    launch made before ``trial_set`` was recorded is checked on its trial runs only."""
    hashes = {t.name: t.params['config_hash'] for t in trials}
    runs = child_runs(client, experiment_id, parent.info.run_id)
    changed = sorted(name for name, run in runs.items()
                     if hashes.get(name) != run.data.params.get('config_hash'))
    if changed:
        raise InputError(f'--resume: the trials {changed} of launch {parent.info.run_name} are '
                         'not in the suite as it is now (the suite file, a config or the code '
                         'of prm_rga changed); run without --resume to start a new launch')
    made_for = parent.data.tags.get(TRIAL_SET)
    if made_for is not None and made_for != trial_set(trials):
        raise InputError(f'--resume: launch {parent.info.run_name} was made for other trials '
                         f'than the {len(trials)} of the suite as it is now (--seeds, the suite '
                         'file, a config or the code of prm_rga changed); run without --resume '
                         'to start a new launch')


def record_reused(client, launch: Launch, trial, source) -> None:
    """The trial's child run in this launch, pointing at the run that trained it."""
    run = client.create_run(launch.experiment_id, run_name=trial.name, tags={
        'mlflow.parentRunId': launch.parent_run_id, 'suite': launch.suite,
        'trial': trial.name, 'scale': launch.scale, reuse.REUSED_FROM: source.info.run_id,
        notes.NOTE: notes.reused_note(launch, trial.name, source)})
    client.log_batch(run.info.run_id,
                     params=[Param(k, str(v)) for k, v in trial.params.items()])
    client.set_terminated(run.info.run_id, 'FINISHED')


def _launch(suite, trials, args, client, uri, plan: Plan, est, free: dict) -> int:
    experiment_id = plan.experiment_id or tracking.get_or_create_experiment(
        client, suite.name, uri)
    if notes.NOTE not in client.get_experiment(experiment_id).tags:  # keep a note edited in the UI
        client.set_experiment_tag(experiment_id, notes.NOTE, notes.experiment_note(suite))
    commit = notes.git_commit()
    storage = _storage(args)
    parent = plan.parent
    if parent is None:
        parent = client.create_run(experiment_id, run_name=plan.name, tags={
            'suite': suite.name, 'scale': args.scale,
            'tune_experiment': f'{storage.rstrip("/")}/{plan.name}', TRIAL_SET: trial_set(trials),
            notes.NOTE: notes.parent_note(suite, args.scale, len(trials), args.command_line,
                                          commit),
            **({notes.GIT_COMMIT: commit} if commit else {})})
    else:
        client.update_run(parent.info.run_id, status='RUNNING')
        client.set_tag(parent.info.run_id, notes.NOTE, notes.resumed_note(
            parent.data.tags.get(notes.NOTE), args.command_line, commit))
    tune_path = parent.data.tags['tune_experiment']
    launch = Launch(name=plan.name, suite=suite.name,
                    scale=args.scale, tracking_uri=uri, experiment_id=experiment_id,
                    parent_run_id=parent.info.run_id,
                    work_root=_work_root(args),
                    flush_interval=args.flush_interval,
                    log_checkpoint=suites.logs_checkpoint(suite, args.scale))
    by_name = {t.name: t for t in trials}
    for name, source in plan.reused.items():
        if name not in plan.runs:
            record_reused(client, launch, by_name[name], source)
    to_train = plan.to_train(trials)
    started = time.monotonic()
    progress = Progress(f'{suite.name} {args.scale}', est, {t.name: t.resources for t in trials},
                        free, args.max_concurrent)
    fit_start = time.time()
    results = _tune(launch, by_name, to_train, args, tune_path, progress) if to_train else []
    # a trial whose actor never started has no config in its result: its error is kept aside
    errors = {(r.config or {}).get('trial'): r.error for r in results if r.error is not None}
    unattributed = errors.pop(None, None)
    runs = child_runs(client, launch.experiment_id, launch.parent_run_id)
    begun = [r.info.start_time / 1000 for r in runs.values()
             if r.info.start_time / 1000 >= fit_start]
    if begun:  # Ray Tune's start, for later estimates (estimate.startup)
        client.log_metric(parent.info.run_id, 'cost/startup_s', min(begun) - fit_start)
    failed, stopped = {}, []  # stopped: interrupted (Ctrl-C) without an error
    for name in by_name:
        run = runs.get(name)
        if run is not None and run.info.status == 'FINISHED':
            continue
        error = (run.data.tags.get('error') if run is not None else None) or (
            str(errors.get(name) or unattributed or '') or None)
        if error is None:
            stopped.append(name)
            if run is not None and run.info.status == 'RUNNING':
                client.set_terminated(run.info.run_id, 'KILLED')
            continue
        if run is not None and run.info.status == 'RUNNING':  # its worker died
            tracking.fail_run(client, run.info.run_id, error)
        failed[name] = error.strip().splitlines()[0] if error.strip() else error
    client.set_terminated(parent.info.run_id,
                          'FAILED' if failed else 'KILLED' if stopped else 'FINISHED')
    done = len(by_name) - len(failed) - len(stopped)
    took = time.monotonic() - started
    print(f'suite {suite.name} ({args.scale}): {done} of {len(by_name)} trials finished, '
          f'{len(failed)} failed, in {_elapsed(took)}; {len(plan.reused)} reused, '
          f'{len(to_train)} handed to Ray Tune' + ('' if to_train else ': nothing was trained'))
    if est.known(to_train):
        print(_against_actual(est, to_train, runs, took, free, args.max_concurrent))
    for name, error in failed.items():
        print(f'  FAILED {name}: {error}')
    for name in stopped:
        print(f'  STOPPED {name}: `--resume` continues it')
    print(f'MLflow: experiment {suite.name!r}, parent run {parent.info.run_id} in {uri}'
          f'\n  trial work dirs: {osp.join(launch.work_root, launch.name)}')
    return 1 if failed or stopped else 0


def _against_actual(est, to_train, runs, took: float, free, max_concurrent) -> str:
    """The launch's estimate next to what it took: wall time, and the trials' own times
    (``cost/wall_s``, this attempt's) summed over those that logged one."""
    wall = est.wall(to_train, free, max_concurrent)
    line = f'estimate against actual: wall {_elapsed(wall)} vs {_elapsed(took)}'
    if wall:
        line += f' ({100 * (took / wall - 1):+.0f}%)'
    timed = [t for t in est.known(to_train)
             if t.name in runs and 'cost/wall_s' in runs[t.name].data.metrics]
    if timed:
        guessed = sum(est.seconds[t.name] for t in timed)
        actual = sum(runs[t.name].data.metrics['cost/wall_s'] for t in timed)
        line += (f'; trial time {_elapsed(guessed)} vs {_elapsed(actual)} '
                 f'({100 * (actual / guessed - 1):+.0f}%, {len(timed)} trials)')
    return line


def _tune(launch: Launch, by_name: dict, to_train: list, args, tune_path: str, progress):
    """One Ray Tune experiment over the trials to train (a restored one with ``--resume``:
    Tune keeps the trials it had, and those finished or reused since return at once)."""
    client = MlflowClient(launch.tracking_uri)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, trials=by_name, launch=launch),
        lambda config: tune.PlacementGroupFactory(
            [{k: v for k, v in by_name[config['trial']].resources.items() if v}]))
    # Tune warns when checkpoints (num_to_keep=1) force experiment snapshots; tiny trials
    # checkpoint every few seconds by design
    os.environ.setdefault('TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S', '0')
    try:
        if args.resume and tune.Tuner.can_restore(tune_path):
            tuner = tune.Tuner.restore(tune_path, trainable=trainable, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable, param_space={'trial': tune.grid_search([t.name for t in to_train])},
                # reuse_actors: the next trial starts in a process that has torch and mmdet loaded
                tune_config=tune.TuneConfig(max_concurrent_trials=args.max_concurrent,
                                            reuse_actors=True),
                run_config=tune.RunConfig(
                    name=launch.name, storage_path=tune_path.rstrip('/').rsplit('/', 1)[0],
                    failure_config=tune.FailureConfig(max_failures=args.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    callbacks=[progress], verbose=0))
        return tuner.fit()
    except BaseException:
        for run in child_runs(client, launch.experiment_id, launch.parent_run_id).values():
            if run.info.status == 'RUNNING':
                client.set_terminated(run.info.run_id, 'KILLED')
        client.set_terminated(launch.parent_run_id, 'KILLED')
        raise


def print_status(suite: str, args) -> int:
    """The trials of the last launch of a suite as MLflow has them; 1 when one failed."""
    uri = args.tracking_uri or tracking.default_tracking_uri()
    tracking.check_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(suite)
    scales = [args.scale] if args.scale else list(dict.fromkeys(['tiny', 'paper']))
    launches = [_last_launch(client, experiment.experiment_id, suite, scale)
                for scale in scales] if experiment else []
    launches = [run for run in launches if run is not None]
    if not launches:
        raise InputError(f'suite {suite}: no launch in {uri}')
    parent = max(launches, key=lambda run: run.info.start_time)
    runs = child_runs(client, experiment.experiment_id, parent.info.run_id)
    print(f'suite {suite} ({parent.data.tags["scale"]}), launch {parent.info.run_name} '
          f'[{parent.info.status}]: {len(runs)} trial runs')
    sources = reuse.runs_by_id(client, [run.data.tags[reuse.REUSED_FROM] for run in
                                        runs.values() if reuse.REUSED_FROM in run.data.tags])
    width = max([len(name) for name in runs] + [5])
    print(f'  {"trial":<{width}}  {"status":<8}  {"val/bbox_mAP":>12}  {"run":<32}  node')
    for name, run in sorted(runs.items()):
        source_id = run.data.tags.get(reuse.REUSED_FROM)
        trained = sources.get(source_id, run)  # a reused trial: the run that trained it
        ap = trained.data.metrics.get('val/bbox_mAP')
        print(f'  {name:<{width}}  {run.info.status:<8}  '
              f'{"-" if ap is None else format(ap, ".4f"):>12}  {trained.info.run_id:<32}  '
              + (f'reused from suite {trained.data.tags.get("suite")}' if source_id in sources
                 else f'source run {source_id} is gone' if source_id
                 else run.data.tags.get('node', '-'))
              + (f'\n    error: {run.data.tags["error"].splitlines()[0]}'
                 if 'error' in run.data.tags else ''))
    return 1 if any(run.info.status == 'FAILED' for run in runs.values()) else 0
