"""95% intervals behind the claim verdicts: training noise (seeds) and test-set noise (images).

- AP of two arms (each a set of runs, one per seed) with per-image evaluation records
  (``eval_records.npz``): a hierarchical bootstrap, seeds then images. Each of B rounds draws
  each arm's seeds with replacement and one resample of the val images shared by every run
  (``prm_rga.metrics.draw_resamples``; the image draw is paired across runs and arms); the
  round's Δ is the difference of the arms' mean AP over the drawn seeds on the drawn images.
  The 95% interval is the 2.5 and 97.5 percentiles of the B values of Δ.
- Quantities without per-image records (training curves, runs older than the records): a
  Welch t interval over the per-seed values (one-sample on per-seed differences when both
  sides come from the same runs); a side with one seed gives no interval.
"""
import os
import os.path as osp
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # the t quantile (scipy.stats.t.ppf; a far lighter import)

from prm_rga_errors import InputError
from prm_rga_eval.bootstrap import (AREA_OF, draw_resamples, paired_bootstrap_ap,
                                    paired_bootstrap_mmr, percentile_interval)
from prm_rga_eval.gt_count import AP_FIELDS, DEFAULT_RANGES
from prm_rga_eval.records import CROWD_FILE, FILE, atomic_savez, load_crowd_record, load_record

LEVEL = 0.95
CROWD_METRICS = ('mMR', 'AP50')  # CrowdHuman's, resampled from crowd_records.npz
RESAMPLES = 1000
HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_ENOUGH = (
    'holds', 'contradicted', 'inconclusive', 'not enough runs')
ONE_SEED = 'one seed: no interval'
NO_VERDICT = 'no verdict'  # in the method of an interval over the images alone


@dataclass
class Interval:
    delta: float
    low: float = np.nan
    high: float = np.nan
    method: str = ONE_SEED
    images: int = 0  # val images behind it (0: per-seed values only)
    # False when an arm has one seed: the interval then holds the test-set noise only, and a
    # difference of two training runs cannot be told from another seed's: no verdict.
    training_noise: bool = True

    @property
    def exists(self):
        return not np.isnan(self.low)


def verdict(iv: Interval, above=None, below=None) -> str:
    """``holds`` when the interval lies on the claimed side of the thresholds (above: Δ >
    above; below: Δ < below; both: an equivalence band), ``contradicted`` when it lies
    entirely outside, ``inconclusive`` when it straddles; no interval, or one without the
    training noise of two runs: ``not enough runs``."""
    if not iv.exists or not iv.training_noise:
        return NOT_ENOUGH
    lo_ok = above is None or iv.low > above
    hi_ok = below is None or iv.high < below
    if lo_ok and hi_ok:
        return HOLDS
    if (above is not None and iv.high <= above) or (below is not None and iv.low >= below):
        return CONTRADICTED
    return INCONCLUSIVE


def over_seeds(a: pd.Series, b: pd.Series = None) -> Interval:
    """Welch t interval of mean(a) - mean(b) over seeds (b None: of mean(a) alone)."""
    a = a.dropna().astype(float)
    b = None if b is None else b.dropna().astype(float)
    delta = a.mean() - (0.0 if b is None else b.mean())
    if len(a) < 2 or (b is not None and len(b) < 2):
        return Interval(delta)
    va = a.var(ddof=1) / len(a)
    vb = 0.0 if b is None else b.var(ddof=1) / len(b)
    se = np.sqrt(va + vb)
    if se == 0:
        return Interval(delta, delta, delta, _seeds_method(a, b))
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + (0 if b is None else vb ** 2 / (len(b) - 1)))
    half = stdtrit(df, (1 + LEVEL) / 2) * se
    return Interval(delta, delta - half, delta + half, _seeds_method(a, b))


def half_width(std, n):
    """Half the 95% t interval of a mean over n seeds with sample std ``std`` (0 for n < 2:
    the figures draw no band where there is no interval)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid='ignore', divide='ignore'):
        half = stdtrit(n - 1, (1 + LEVEL) / 2) * np.asarray(std, dtype=float) / np.sqrt(n)
    return np.where(n >= 2, np.nan_to_num(half), 0.0)


def _seeds_method(a, b):
    if b is None:
        return f'seeds: one-sample t ({len(a)} seeds)'
    return f'seeds: Welch t ({len(a)} vs {len(b)} seeds)'


def record_location(metric: str):
    """(artifact path, source, field) of a logged AP metric (COCO, or CrowdHuman's mMR / AP50)
    in the evaluation records, or None (e.g. training curves)."""
    member, _, rest = metric.rpartition('val/')
    if metric.startswith('val/') and rest in CROWD_METRICS:
        return f'{member}{CROWD_FILE}', 'model', rest
    if not metric.startswith(('val/', 'm')) or 'bbox_mAP' not in rest:
        return None
    source, field = ('model', rest)
    head = rest.split('/', 1)
    if head[0].startswith('h') and head[0][1:].isdigit():
        source, field = head
    return f'{member}{FILE}', source, field


def _one_pass(field: str) -> tuple:
    """The AP fields one resampling pass gives along with FIELD: those of its set of images
    (all, or one GT-count subset) and its area range ('gt1-3/bbox_mAP': AP, AP50 and AP75 of the
    subset), so that a report resamples only what its tables and claims read."""
    cut = field.rfind('/') + 1  # after a subset's prefix
    return tuple(field[:cut] + f for f in AP_FIELDS if AREA_OF[f] == AREA_OF[field[cut:]])


class RecordBootstrap:
    """Resampled AP of runs from their evaluation records, computed once per run, source and
    pass (``_one_pass``), all on the same image resamples (drawn once per val set)."""

    def __init__(self, runs, resamples=RESAMPLES, seed=0):
        self.runs, self.resamples, self.seed = runs, resamples, seed
        self._records, self._stats, self._rows = {}, {}, {}
        self.missing = {}  # run id -> why it has no usable record (the report lists them)

    def per_run(self, run_id, metric):
        """(gt_sha256, array (B,)) of METRIC on the resamples, or (None, reason)."""
        where = record_location(metric)
        if where is None:
            return None, f'{metric} has no per-image record'
        path, source, field = where
        key, crowd = (run_id, path), path.endswith(CROWD_FILE)
        if key not in self._records:
            local = self.runs.artifact(run_id, path)
            try:
                self._records[key] = ((load_crowd_record if crowd else load_record)(local)
                                      if local else f'no {path}')
            except InputError as e:
                self._records[key] = str(e)
        record = self._records[key]
        if isinstance(record, str):
            self.missing[run_id] = record
            return None, f'run {run_id}: {record}'
        gt, dets, sha = record  # gt: a COCO, or CrowdHuman's gt records
        if crowd:
            dets = {source: dets}
        if source not in dets:
            return None, f'run {run_id}: {path} has no {source} detections'
        if sha not in self._rows:
            self._rows[sha] = draw_resamples(len(gt) if crowd else len(gt.getImgIds()),
                                             self.resamples, self.seed)
        fields = None if crowd else _one_pass(field)
        part = 'crowd' if crowd else fields[0]
        if (key, source, part) not in self._stats:
            self._stats[key, source, part] = self._cached(
                run_id, f'{path}-{source}-{part}-{sha[:12]}-{self.resamples}-{self.seed}',
                lambda: (paired_bootstrap_mmr(gt, dets, self._rows[sha]) if crowd else
                         paired_bootstrap_ap(gt, {source: dets[source]}, self._rows[sha],
                                             DEFAULT_RANGES if '/' in field else None,
                                             fields))[source])
        values = self._stats[key, source, part][field]
        return sha, np.where(values < 0, np.nan, values) * 100

    def _cached(self, run_id, name, compute):
        """Resampled AP kept beside the run's downloaded artifacts: a report made again from
        the same store does not resample a finished run again."""
        folder = getattr(self.runs, 'cache_dir', None)
        path = osp.join(folder, run_id, 'bootstrap', name.replace('/', '_') + '.npz') \
            if folder else None
        if path and osp.isfile(path):
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        out = compute()
        if path:
            os.makedirs(osp.dirname(path), exist_ok=True)
            atomic_savez(path, out)
        return out

    def compare(self, arm_a, arm_b, metric_a, metric_b=None):
        """Hierarchical bootstrap interval of mean(a) - mean(b) (percent), or the reason why
        not: arms are frames of runs (``run_id``, ``seed``)."""
        arms = []
        for arm, metric in ((arm_a, metric_a), (arm_b, metric_b or metric_a)):
            values = []
            for run_id in arm['run_id']:
                sha, v = self.per_run(run_id, metric)
                if sha is None:
                    return v
                values.append((sha, v))
            arms.append(values)
        if len({sha for arm in arms for sha, _ in arm}) > 1:
            return 'the runs were evaluated on different val sets (gt_sha256 differs)'
        rng = np.random.default_rng(self.seed + 1)
        same_runs = list(arm_a['run_id']) == list(arm_b['run_id'])  # e.g. a head vs its ensemble
        picks = [rng.integers(0, len(arm), size=(self.resamples, len(arm))) for arm in arms]
        if same_runs:
            picks[1] = picks[0]
        means = [np.stack([x for _, x in arm])[pick, np.arange(self.resamples)[:, None]].mean(1)
                 for arm, pick in zip(arms, picks)]  # per arm (B,): mean over drawn seeds
        delta = means[0] - means[1]
        low, high = percentile_interval(delta, LEVEL)
        n_a, n_b = len(arms[0]), len(arms[1])
        images = len(self._rows[arms[0][0][0]][0])
        noise = min(n_a, n_b) > 1
        if n_a == n_b == 1:
            method = f'images only: paired bootstrap (one seed per arm, no training noise: {NO_VERDICT})'
        else:
            method = f'seeds × images: hierarchical bootstrap ({n_a} vs {n_b} seeds)'
            if not noise:
                method += f' (one seed on a side: {NO_VERDICT})'
        return Interval(np.nan, low, high, f'{method}, B={self.resamples}', images, noise)
