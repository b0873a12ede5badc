"""Load the runs of suites from an MLflow tracking URI (SQLite file or server) into pandas.

Reads only what DESIGN.md's MLflow schema names: one experiment per suite; child runs carry the
tags `suite`, `trial`, `scale`, the suite params and `config_hash`, final metrics, metric
histories and artifacts; a trial a launch reused (tag `reused_from`) is read as the run that
trained it. Never needs Ray.
"""
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from analysis import specs
from experiments import reuse, tracking
from prm_rga_errors import InputError

PARAMS = (*specs.DEFAULTS, 'seed')


def normalize(params: dict) -> dict:
    """Suite params as comparable values: defaults filled in, numbers parsed, and `anneal` false
    when λ0 = 1 (no RGA: annealing is moot)."""
    p = {**specs.DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    if p['lambda0'] != specs.ANY:
        p['lambda0'] = float(p['lambda0'])
    if p['anneal'] != specs.ANY:
        p['anneal'] = str(p['anneal']).lower() in ('true', '1')
    if p['ratios'] != specs.ANY:
        p['ratios'] = ','.join(r.strip() for r in str(p['ratios']).split(','))
    if p['lambda0'] == 1.0:
        p['anneal'] = False
    if p.get('seed') is not None:
        p['seed'] = int(p['seed'])
    return p


def pos_fractions(ratios: str) -> list:
    """'1:1,1:9' -> [0.5, 0.1]: the positive fraction of each head (pos:neg = 1:k)."""
    out = []
    for r in ratios.split(','):
        pos, neg = (float(x) for x in r.split(':'))
        out.append(pos / (pos + neg))
    return out


class Runs:
    """The trial runs of some suites: a frame of params, status and final metrics, plus
    metric histories and artifacts fetched on demand (cached per instance / on disk)."""

    def __init__(self, suites, tracking_uri=None, cache_dir='.analysis-cache', scale=None):
        self.tracking_uri = tracking_uri or tracking.default_tracking_uri()
        os.environ.setdefault('MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR', 'false')
        self._check_uri()
        self.client = MlflowClient(self.tracking_uri)
        self.cache_dir = cache_dir
        self.suites = list(suites)
        self.missing_suites = []
        self.members = {}  # suite -> the ids of the runs it holds, reused ones as their source
        self._histories = {}
        self.frame = self._load()
        scales = self.frame['scale'].dropna() if len(self.frame) else []
        if scale is None and len(scales):  # the scale of the latest run
            scale = self.frame.sort_values('start_time')['scale'].dropna().iloc[-1]
        self.scale = scale
        if scale is not None:
            self.frame = self.frame[self.frame['scale'].fillna(scale) == scale]

    def _check_uri(self):
        """A SQLite store must exist (reading never creates one; an old one is upgraded); a
        server must answer."""
        if self.tracking_uri.startswith('sqlite:///'):
            path = self.tracking_uri[len('sqlite:///'):]
            if not osp.isfile(path):
                raise InputError(f'--tracking-uri {self.tracking_uri}: no MLflow database at '
                                 f'{path} (run a suite first, or point to the store)')
        tracking.check_tracking_uri(self.tracking_uri)

    def _load(self) -> pd.DataFrame:
        records, seen = [], set()
        for suite in self.suites:
            try:
                exp = self.client.get_experiment_by_name(suite)
            except MlflowException as err:
                raise InputError(f'--tracking-uri {self.tracking_uri}: {err}') from err
            if exp is None:
                self.missing_suites.append(suite)
                continue
            runs = [run for run in tracking.search_runs(self.client, [exp.experiment_id])
                    if 'mlflow.parentRunId' in run.data.tags or 'trial' in run.data.tags]
            # a reused trial is its source run, counted once however many suites reuse it
            resolved = reuse.resolve(self.client, runs)
            self.members[suite] = [run.info.run_id for run in resolved]
            for run in resolved:
                if run.info.run_id not in seen:
                    seen.add(run.info.run_id)
                    records.append(self._record(suite, run))
        columns = ['run_id', 'experiment_id', 'suite', 'trial', 'scale', 'status',
                   'start_time', 'end_time', 'error', 'config_hash', 'launch', 'config_axes',
                   *PARAMS]
        return pd.DataFrame.from_records(records, columns=None if records else columns)

    @staticmethod
    def _record(suite, run) -> dict:
        tags, info = run.data.tags, run.info
        rec = dict(run_id=info.run_id, experiment_id=info.experiment_id,
                   suite=tags.get('suite', suite), trial=tags.get('trial', info.run_name),
                   scale=tags.get('scale'), status=info.status, start_time=info.start_time,
                   end_time=info.end_time, error=tags.get('error', ''),
                   config_hash=run.data.params.get('config_hash'),
                   launch=tags.get('mlflow.parentRunId'), seed=None)
        rec.update(normalize({k: v for k, v in run.data.params.items() if k in PARAMS}))
        # Config-key axes (dotted params) make a variant that no paper row describes.
        rec['config_axes'] = ';'.join(f'{k}={v}' for k, v in sorted(run.data.params.items())
                                      if '.' in k)
        # pycocotools reports -1 for an AP it cannot compute (no objects of that size): no value.
        rec.update({k: (np.nan if 'val/' in k and 'bbox_mAP' in k and v < 0 else v)
                    for k, v in run.data.metrics.items()})
        return rec

    def unfinished(self) -> list:
        """The suites asked for that hold no finished run; a suite whose trials were all reused
        from another suite's runs holds those runs."""
        frame = self.frame
        finished = set(frame.loc[frame['status'] == 'FINISHED', 'run_id']) if len(frame) else set()
        return [suite for suite in self.suites
                if not finished.intersection(self.members.get(suite, ()))]

    def launches(self) -> list:
        """The launches (parent runs) that trained the runs read, oldest first: their notes say
        how each was started and resumed, at which commit (experiments.notes)."""
        ids = set(self.frame['launch'].dropna()) if len(self.frame) else set()
        return sorted((self.client.get_run(i) for i in ids), key=lambda r: r.info.start_time)

    # -- selection -----------------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        return self._frame

    @frame.setter
    def frame(self, frame):
        self._frame, self._selected = frame, {}

    def select(self, params: dict, finished=True) -> pd.DataFrame:
        """Runs whose suite params match the selector and that vary no config key; finished ones
        deduplicated per seed (the latest run of a seed counts, e.g. when two suites ran the same
        trial). Kept per selector: tables, figures and claims ask for the same runs hundreds of
        times (a frame they read, never change)."""
        want = normalize(params)
        key = (tuple(sorted(want.items())), finished)
        if key not in self._selected:
            self._selected[key] = self._select(want, finished)
        return self._selected[key]

    def _select(self, want: dict, finished: bool) -> pd.DataFrame:
        frame = self.frame
        if not len(frame):
            return frame
        keys = [k for k, v in want.items() if k != 'seed' and v != specs.ANY]
        # one comparison of object arrays (pandas' `==` costs a millisecond per column)
        mask = (frame[keys].to_numpy(dtype=object)
                == np.array([want[k] for k in keys], dtype=object)).all(1)
        frame = frame[mask & frame['config_axes'].eq('').to_numpy()]
        if finished:
            frame = frame[frame['status'] == 'FINISHED'].sort_values('end_time')
            frame = frame.drop_duplicates('seed', keep='last').sort_values('seed')
        else:
            frame = frame[frame['status'] != 'FINISHED']
        return frame

    # -- histories -----------------------------------------------------------------------------
    def history(self, run_ids, keys) -> pd.DataFrame:
        """Metric histories as one long frame (run_id, key, step, value), fetched in bulk: one
        SQL query on a SQLite store; concurrent requests (one per run and key) on a server,
        whose public API has no bulk history call."""
        run_ids, keys = sorted(run_ids), sorted(keys)
        if not run_ids or not keys:
            return pd.DataFrame(columns=['run_id', 'key', 'step', 'value'])
        cached = (tuple(run_ids), tuple(keys))  # figures and claims ask for the same curves
        if cached not in self._histories:
            if self.tracking_uri.startswith('sqlite:///'):
                frame = self._history_sql(run_ids, keys)
            else:
                frame = self._history_rest(run_ids, keys)
            self._histories[cached] = frame.sort_values(
                ['run_id', 'key', 'step'], kind='stable').reset_index(drop=True)
        return self._histories[cached]

    def _history_sql(self, run_ids, keys):
        from mlflow.store.tracking.dbmodels.models import SqlMetric
        from sqlalchemy import create_engine, select
        from sqlalchemy.pool import NullPool
        query = select(SqlMetric.run_uuid.label('run_id'), SqlMetric.key, SqlMetric.step,
                       SqlMetric.value, SqlMetric.is_nan).where(
                           SqlMetric.run_uuid.in_(run_ids), SqlMetric.key.in_(keys))
        # MLflow's model gives the SQL; the driver's own cursor reads it (3x faster than rows
        # through SQLAlchemy for a million points). A plain engine: MLflow's store would check
        # the schema again, which _check_uri did.
        engine = create_engine(self.tracking_uri, poolclass=NullPool)
        sql = query.compile(engine, compile_kwargs={'literal_binds': True})
        conn = engine.raw_connection()
        try:
            frame = pd.read_sql_query(str(sql), conn.driver_connection)
        finally:
            conn.close()
        frame.loc[frame.pop('is_nan').astype(bool), 'value'] = np.nan
        return frame

    def _history_rest(self, run_ids, keys):
        pairs = [(r, k) for r in run_ids for k in keys]

        def fetch(pair):
            return [(pair[0], m.key, m.step, m.value)
                    for m in self.client.get_metric_history(*pair)]

        with ThreadPoolExecutor(16) as pool:
            rows = [row for part in pool.map(fetch, pairs) for row in part]
        return pd.DataFrame(rows, columns=['run_id', 'key', 'step', 'value'])

    # -- artifacts -----------------------------------------------------------------------------
    def artifact(self, run_id: str, path: str):
        """Local path of a run's artifact (downloaded once into the cache), or None if the run
        has no such artifact."""
        dst = osp.join(self.cache_dir, run_id)
        local = osp.join(dst, path)
        if osp.exists(local):
            return local
        try:
            return tracking.download_artifact(self.client, run_id, path, dst)
        except (MlflowException, OSError):
            return None


def seed_stats(values) -> dict:
    """Mean, sample std and count of per-seed values (NaN dropped)."""
    values = pd.Series(values, dtype=float).dropna()
    n = len(values)
    return dict(mean=values.mean() if n else np.nan,
                std=values.std(ddof=1) if n > 1 else np.nan, n=n)
