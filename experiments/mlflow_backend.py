"""The mmengine visualizer backend that streams a trial's scalars into its MLflow child run.

Why not mmengine's ``MLflowVisBackend``: it drives MLflow's fluent API, which starts (and, in
``close``, ends) a run of its own in the process, logs every flattened config key as a param and
sends one request per ``add_scalars`` call without retrying. A trial's child run is created and
ended by the launcher (it must exist exactly once across resumes and end FAILED with the error),
its params are the suite's axes only (docs/mlflow-schema.md), and metrics must be batched and
survive a restarting tracking server, so all of its methods would have to be replaced.
"""
import logging
import threading
import time

from mmengine.registry import VISBACKENDS
from mmengine.visualization.vis_backend import BaseVisBackend, force_init_env

from experiments.tracking import metric_names, without_empty_buckets
from prm_rga_errors import InputError

logger = logging.getLogger(__name__)


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
    from a checkpoint holds one point per step. ``flush`` delivers the buffer at once: the
    launcher calls it before it hands Tune a checkpoint, so that a trial killed afterwards and
    resumed from that checkpoint has every step before it in its run.

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
        self._sending = threading.Lock()  # one flush at a time: the thread's, or ``flush``
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

    def flush(self) -> bool:
        """Delivers the buffered points now. False when the store does not take them: they are
        kept, and the flush thread retries them as it would have."""
        if not self._env_initialized:
            return True
        try:
            self._flush()
            return True
        except Exception as err:
            logger.warning('MLflow run %s: flush failed (%s); the points are kept for the next '
                           'try', self._run_id, err)
            return False

    def _flush(self) -> None:
        with self._sending:
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
