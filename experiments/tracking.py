"""MLflow wiring: where runs are stored, a reachability check, and the mmengine visualizer backend
that streams a trial's scalars into its MLflow child run.

The embedded default is a SQLite store with an artifact folder, both under ``<cwd>/mlruns`` with
absolute paths, so that Ray's per-trial working directories cannot scatter them. On a cluster an
``http://`` tracking server is passed explicitly to every worker (DESIGN.md).

Why not mmengine's ``MLflowVisBackend``: it drives MLflow's fluent API, which starts (and, in
``close``, ends) a run of its own in the process, logs every flattened config key as a param and
sends one request per ``add_scalars`` call without retrying. A trial's child run is created and
ended by the launcher (it must exist exactly once across resumes and end FAILED with the error),
its params are the suite's axes only (docs/mlflow-schema.md), and metrics must be batched and
survive a restarting tracking server, so all of its methods would have to be replaced.
"""
import logging
import os
import os.path as osp
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from mmengine.registry import VISBACKENDS
from mmengine.visualization.vis_backend import BaseVisBackend, force_init_env

from prm_rga_errors import InputError

STORE_DIR = 'mlruns'
CHECKPOINT = 'checkpoint.pth'  # a run's model artifact (docs/mlflow-schema.md)
# The trial's torch CPU threads: float sums in another order change weights and scores in their
# last digits, so `prm-rga train|test --run` computes with as many
TORCH_THREADS = 'torch_threads'
ERROR_TAG_LIMIT = 5000  # MLflow tag values are bounded; keep the head of long tracebacks
# Metric-name prefixes of a validation log: tracked configs evaluate with prefix='val';
# mmdet's CocoMetric defaults to 'coco'. A training log never has them.
VAL_PREFIXES = ('val/', 'coco/')

logger = logging.getLogger(__name__)


def default_tracking_uri(root: str = None) -> str:
    """The embedded default store: ``sqlite:///<abs root>/mlruns/mlflow.db``."""
    return f'sqlite:///{osp.abspath(osp.join(root or os.getcwd(), STORE_DIR, "mlflow.db"))}'


def artifact_location(tracking_uri: str, experiment: str):
    """Where a new experiment keeps its artifacts: ``<store dir>/artifacts/<experiment>`` for a
    SQLite store; None (the server's own default, e.g. proxied artifacts) for a server."""
    if not tracking_uri.startswith('sqlite:///'):
        return None
    db = Path(tracking_uri[len('sqlite:///'):])
    return (db.parent / 'artifacts' / experiment).as_uri()


def check_tracking_uri(uri: str, timeout: float = 10.0) -> None:
    """Fail before anything starts when the store cannot be used: an ``http(s)://`` server that
    does not answer as MLflow, or a SQLite file whose folder cannot be created."""
    if uri.startswith(('http://', 'https://')):
        url = uri.rstrip('/') + '/api/2.0/mlflow/experiments/search?max_results=1'
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError) as err:
            raise InputError(f'tracking URI {uri}: no MLflow tracking server answers there '
                             f'({getattr(err, "reason", err)}); start one with '
                             '`mlflow server --host HOST --port PORT` or omit --tracking-uri '
                             'for the local store') from err
    elif uri.startswith('sqlite:///'):
        folder = osp.dirname(uri[len('sqlite:///'):])
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise InputError(f'tracking URI {uri}: cannot create {folder}: {err}') from err
    else:
        raise InputError(f'tracking URI {uri}: use sqlite:///ABSOLUTE/PATH.db or http(s)://HOST:PORT')


def get_or_create_experiment(client, name: str, tracking_uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(tracking_uri, name))


def quote(value: str) -> str:
    """VALUE as a string literal of MLflow's search syntax."""
    return "'" + value.replace("'", "\\'") + "'"


def search_runs(client, experiment_ids, filter_string: str = '', order_by=None,
                max_results: int = None, page_size: int = 1000) -> list:
    """Every run the filter matches (at most ``max_results``), page by page: one call of
    ``MlflowClient.search_runs`` returns at most ``max_results`` runs (1,000 by default, on a
    SQLite store and a server alike) and a token for the next page. Oldest first unless
    ``order_by`` says otherwise: runs a running launch creates meanwhile then join the last
    page rather than shift the ones not yet read."""
    runs, token = [], None
    order_by = order_by or ['attributes.start_time ASC']
    while max_results is None or len(runs) < max_results:
        size = page_size if max_results is None else min(page_size, max_results - len(runs))
        page = client.search_runs(experiment_ids, filter_string, max_results=size,
                                  order_by=order_by, page_token=token)
        runs += page
        token = page.token
        if not token:
            break
    return runs


def metric_names(scalars: dict) -> dict:
    """mmengine log tag -> MLflow metric names (docs/mlflow-schema.md). A validation tag holds
    the evaluator's metrics (``val/X``, or ``coco/X`` without the tracked prefix, logged as
    ``val/X``) and the loop's ``time``/``data_time`` (logged as ``val/time``...); a training tag,
    whose keys LogProcessor stripped of ``train/``, gets that prefix back."""
    if any(key.startswith(VAL_PREFIXES) for key in scalars):
        return {'val/' + (key.split('/', 1)[1] if key.startswith(VAL_PREFIXES) else key): value
                for key, value in scalars.items()}
    return {'train/' + key: value for key, value in scalars.items()}


def without_empty_buckets(metrics: dict) -> dict:
    """METRICS less pycocotools' -1, its "no GT in this bucket" value (no large objects, an
    empty GT-count subset): logged as absent rather than as a score (docs/mlflow-schema.md)."""
    return {key: value for key, value in metrics.items() if not ('mAP' in key and value == -1)}


def fail_run(client, run_id: str, error: str) -> None:
    client.set_tag(run_id, 'error', error[:ERROR_TAG_LIMIT])
    client.set_terminated(run_id, 'FAILED')


def log_run_artifacts(client, run_id: str, work_dir: str, member: str = '',
                      checkpoint: str = None) -> None:
    """A trained (or evaluated) config's files into its run, under ``member/`` for one detector
    of an ensemble: its ``config.py``, what its hooks wrote to ``artifacts/`` and ``eval/``, and
    with ``checkpoint`` that checkpoint's weights as ``checkpoint.pth``."""
    import tempfile

    from prm_rga.checkpoint import publish_checkpoint
    client.log_artifact(run_id, osp.join(work_dir, 'config.py'), member or None)
    for folder, dest in (('artifacts', member), ('eval', osp.join(member, 'eval'))):
        path = osp.join(work_dir, folder)
        if osp.isdir(path) and os.listdir(path):
            client.log_artifacts(run_id, path, dest or None)
    if checkpoint:
        with tempfile.TemporaryDirectory() as tmp:
            publish_checkpoint(checkpoint, osp.join(tmp, CHECKPOINT))
            client.log_artifact(run_id, osp.join(tmp, CHECKPOINT), member or None)


class TrackingError(RuntimeError):
    """Metrics could not be delivered to the tracking store: the trial must not count as done."""


@VISBACKENDS.register_module()
class MlflowRunBackend(BaseVisBackend):
    """Sends scalars to an existing MLflow run (a trial's child run) with ``log_batch``.

    Scalars are buffered and flushed by a background thread every ``flush_interval`` seconds
    and at ``close``; a failed flush keeps the points and is retried with exponential backoff,
    so a tracking server that restarts loses nothing. Each point keeps the timestamp it was
    taken at, so a retry of a batch the store already committed is deduplicated by the store
    (same key, step, timestamp, value). ``close`` raises TrackingError when the points cannot
    be delivered within ``close_timeout`` seconds. When the run already has metrics (a resumed
    trial), steps at or below the last logged one of a key are skipped, so a run continued
    from a checkpoint holds one point per step.

    Args:
        save_dir: unused (BaseVisBackend's signature).
        tracking_uri: the store the run lives in.
        run_id: the run to log to.
        prefix: prepended to every name, e.g. ``m0/`` for one member of an ensemble trial.
    """

    def __init__(self, save_dir: str = None, tracking_uri: str = None, run_id: str = None,
                 prefix: str = '', flush_interval: float = 5.0, max_backoff: float = 60.0,
                 close_timeout: float = 300.0):
        super().__init__(save_dir)
        if not tracking_uri or not run_id:
            raise InputError('MlflowRunBackend needs tracking_uri and run_id')
        self._tracking_uri, self._run_id, self._prefix = tracking_uri, run_id, prefix
        self._flush_interval, self._max_backoff = flush_interval, max_backoff
        self._close_timeout = close_timeout
        self._buffer, self._lock = [], threading.Lock()
        self._stop = threading.Event()
        self.sent = 0  # points delivered, for tests and benchmarks

    def _init_env(self):
        from mlflow import MlflowClient
        self._client = MlflowClient(self._tracking_uri)
        run = self._client.get_run(self._run_id)
        self._logged_through = {
            key: max(m.step for m in self._client.get_metric_history(self._run_id, key))
            for key in run.data.metrics}
        self._thread = threading.Thread(target=self._flush_loop, daemon=True,
                                        name=f'mlflow-{self._run_id[:8]}')
        self._thread.start()

    @property
    @force_init_env
    def experiment(self):
        return self._client

    @force_init_env
    def add_scalar(self, name, value, step=0, **kwargs) -> None:
        self.add_scalars({name: value}, step)

    @force_init_env
    def add_scalars(self, scalar_dict, step=0, file_path=None, **kwargs) -> None:
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        points = []
        for key, value in without_empty_buckets(metric_names(scalar_dict)).items():
            key = self._prefix + key
            if step <= self._logged_through.get(key, -1):
                continue
            points.append(Metric(key, float(value), now, step))
        with self._lock:
            self._buffer.extend(points)

    def _flush(self) -> None:
        with self._lock:
            batch = list(self._buffer)
        if not batch:
            return
        self._client.log_batch(self._run_id, metrics=batch)
        with self._lock:
            del self._buffer[:len(batch)]
        self.sent += len(batch)

    def _flush_loop(self) -> None:
        wait = self._flush_interval
        while not self._stop.wait(wait):
            try:
                self._flush()
                wait = self._flush_interval
            except Exception as err:  # the server may be restarting: keep the points, back off
                wait = min(2 * wait, self._max_backoff)
                logger.warning('MLflow run %s: flush failed (%s); retrying in %.0f s',
                               self._run_id, err, wait)

    def close(self) -> None:
        """Deliver every buffered point, retrying until ``close_timeout``; raise if that fails."""
        if not self._env_initialized or self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        deadline, wait = time.monotonic() + self._close_timeout, 1.0
        while True:
            try:
                self._flush()
                return
            except Exception as err:
                if time.monotonic() + wait > deadline:
                    raise TrackingError(
                        f'could not send {len(self._buffer)} metric points to run '
                        f'{self._run_id} at {self._tracking_uri}: {err}') from err
                time.sleep(wait)
                wait = min(2 * wait, self._max_backoff)
