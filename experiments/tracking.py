"""MLflow wiring: where runs are stored, a reachability check, the one run lookup that pages,
and a trial's metric names and artifacts. Light (MLflow's client only, no mmengine), so that
the report and `suite status` start fast; the visualizer backend that streams a trial's
scalars is ``experiments.mlflow_backend``.

The embedded default is a SQLite store with an artifact folder, both under ``<cwd>/mlruns`` with
absolute paths, so that Ray's per-trial working directories cannot scatter them. On a cluster an
``http://`` tracking server is passed explicitly to every worker (DESIGN.md).
"""
import contextlib
import os
import os.path as osp
import sqlite3
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

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
        prepare_sqlite_store(uri[len('sqlite:///'):])
    else:
        raise InputError(f'tracking URI {uri}: use sqlite:///ABSOLUTE/PATH.db or http(s)://HOST:PORT')


def prepare_sqlite_store(path: str) -> None:
    """Creates the SQLite store at PATH, or upgrades its schema to this MLflow's, in one process
    at a time (a file lock beside the database). MLflow's own store does either on first use
    without a lock, so commands started together on a new directory run the migrations at once
    and all but one die (`table _alembic_tmp_experiments already exists`); and it refuses an
    older schema. A store that is ready costs one query and no lock."""
    from mlflow.store.db import utils as db
    from mlflow.utils.file_utils import ExclusiveFileLock
    engine = db.create_sqlalchemy_engine_with_retry(f'sqlite:///{path}')
    head = db._get_latest_schema_revision()
    try:
        if db._get_schema_version(engine) != head:  # also a new, empty database
            with ExclusiveFileLock(f'{path}.lock'):  # the others wait here, then find it ready
                found = db._get_schema_version(engine)
                if db._is_empty_database(engine):
                    db._initialize_tables(engine)
                elif found != head:
                    _upgrade_schema(engine, path, found, head)
    finally:
        engine.dispose()


def _upgrade_schema(engine, path: str, found: str, head: str) -> None:
    """MLflow's migrations (`mlflow db upgrade`), after a copy of the store as it was."""
    import mlflow
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError
    from mlflow.store.db import utils as db
    try:
        ScriptDirectory.from_config(db._get_alembic_config('')).get_revision(found)
    except CommandError as err:
        raise InputError(f'MLflow store {path}: its schema {found} is newer than MLflow '
                         f'{mlflow.__version__} knows; use the MLflow that wrote it') from err
    label = found or 'base'  # the schema before MLflow's first migration has no revision
    backup = f'{path}.{label}.bak'
    print(f'MLflow store {path}: upgrading its schema from {label} to {head} (MLflow '
          f'{mlflow.__version__}); the store as it was is kept in {backup}', flush=True)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute('VACUUM INTO ?', (backup, ))
    try:
        db._upgrade_db(engine)
    except Exception as err:
        raise InputError(f'MLflow store {path}: the schema upgrade failed ({err}); the store as '
                         f'it was is {backup}') from err


def get_or_create_experiment(client, name: str, tracking_uri: str) -> str:
    """The experiment's id; of two launches of a new suite that create it at once, the second
    takes the one the first made."""
    from mlflow.exceptions import MlflowException
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(
            name, artifact_location=artifact_location(tracking_uri, name))
    except MlflowException as err:
        if err.error_code != 'RESOURCE_ALREADY_EXISTS':
            raise
        return client.get_experiment_by_name(name).experiment_id


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


def download_artifact(client, run_id: str, path: str, folder: str) -> str:
    """The run's artifact file PATH downloaded to FOLDER/PATH; returns that path. MLflow writes
    a file into the folder it is given under its base name, so that an ensemble's
    ``m0/checkpoint.pth`` and ``m1/checkpoint.pth`` (or its own and its members'
    ``eval_records.npz``) would overwrite each other. The file appears at FOLDER/PATH only
    complete (downloaded beside it, then renamed): a download that was interrupted leaves no
    file a cache would take for the artifact."""
    local = osp.join(folder, path)
    os.makedirs(osp.dirname(local), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=osp.dirname(local), prefix='.download-') as tmp:
        os.replace(client.download_artifacts(run_id, path, tmp), local)
    return local


def log_run_artifacts(client, run_id: str, work_dir: str, member: str = '',
                      checkpoint: str = None) -> None:
    """A trained (or evaluated) config's files into its run, under ``member/`` for one detector
    of an ensemble: its ``config.py``, what its hooks wrote to ``artifacts/`` and ``eval/``, and
    with ``checkpoint`` that checkpoint's weights as ``checkpoint.pth``."""
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
