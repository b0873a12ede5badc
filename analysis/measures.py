"""The quantities behind the figures and the claim checks, computed once from the runs."""
import numpy as np
import pandas as pd

from analysis import specs
from analysis.runs import pos_fractions, seed_stats


def curves(runs, selector: dict, keys) -> dict:
    """key -> frame (index step, one column per seed) of the finished runs of the selector."""
    done = runs.select(selector)
    hist = runs.history(done['run_id'], keys)
    seed_of = dict(zip(done['run_id'], done['seed']))
    out = {}
    for key in keys:
        part = hist[hist['key'] == key]
        if len(part):
            out[key] = part.assign(seed=part['run_id'].map(seed_of)).pivot_table(
                index='step', columns='seed', values='value', aggfunc='last')
    return out


def smooth(frame: pd.DataFrame, points: int = 25) -> pd.DataFrame:
    """Rolling mean over 1/POINTS of the curve (the paper's Fig. 5 is 'smoothed')."""
    return frame.rolling(max(1, len(frame) // points), min_periods=1).mean()


def window_mean(frame: pd.DataFrame, lo: float, hi: float) -> pd.Series:
    """Per seed, the mean of a curve over the steps in [lo, hi) as fractions of its last step."""
    last = frame.index.max()
    part = frame[(frame.index >= lo * last) & (frame.index < hi * last + (hi == 1))]
    return part.mean()


CONVERGED = 0.05  # a converged run adds at most this share of its final AP in its last quarter


def last_quarter_gain(history: pd.DataFrame) -> pd.Series:
    """Per run of HISTORY (run_id, step, value: one validation metric), the share of its final
    value gained in the last quarter of training: (final − the value of the last evaluation at
    or before 3/4 of the last step) / final. NaN for a run with one evaluation."""
    out = {}
    for run_id, h in history.sort_values('step').groupby('run_id'):
        before = h[h['step'] <= 0.75 * h['step'].iloc[-1]]
        final = h['value'].iloc[-1]
        out[run_id] = (final - before['value'].iloc[-1]) / final if len(before) and final \
            else np.nan
    return pd.Series(out, dtype=float)


def convergence(runs) -> pd.Series:
    """Per finished run (run id), ``last_quarter_gain`` of its validation AP (AP50 on the
    synthetic crowd, whose metric logs no COCO AP)."""
    done = runs.frame[runs.frame['status'] == 'FINISHED'] if len(runs.frame) else runs.frame
    parts = []
    for metric, rows in (('val/bbox_mAP', done['dataset'] != 'crowdhuman'),
                         ('val/AP50', done['dataset'] == 'crowdhuman')) if len(done) else ():
        parts.append(last_quarter_gain(runs.history(done.loc[rows, 'run_id'], [metric])))
    return pd.concat(parts) if parts else pd.Series(dtype=float)


def finals(runs, selector: dict, metric: str, scale=100.0) -> pd.Series:
    """Per seed, the final value of METRIC (percent by default) of the selector's runs."""
    done = runs.select(selector)
    if metric not in done:
        return pd.Series(dtype=float)
    return (done.set_index('seed')[metric] * scale).dropna()


def rpn_positives(runs, selector=specs.BASELINE) -> pd.DataFrame:
    """rpn_pos_vs_gt.csv of the selector's runs, pooled, with their seed."""
    parts = []
    for run_id, seed in runs.select(selector)[['run_id', 'seed']].itertuples(False):
        path = runs.artifact(run_id, 'rpn_pos_vs_gt.csv')
        if path:
            parts.append(pd.read_csv(path).assign(seed=seed))
    return pd.concat(parts) if parts else pd.DataFrame(columns=['num_gt', 'num_pos', 'seed'])


def head_scores(runs, selector=specs.PRM) -> pd.DataFrame:
    """Per proposal and seed, each head's score of one class: the foreground class that the
    heads' mean probability ranks first (so the pair compares the same class). Columns h0, h1,
    seed; the heads are ordered as in `ratios`."""
    parts = []
    for run_id, seed in runs.select(selector)[['run_id', 'seed']].itertuples(False):
        path = runs.artifact(run_id, 'scores.npz')
        if not path:
            continue
        with np.load(path) as data:
            h0, h1 = data['h0'][:, :-1], data['h1'][:, :-1]
        cls = (h0 + h1).argmax(1)
        rows = np.arange(len(cls))
        parts.append(pd.DataFrame(dict(h0=h0[rows, cls], h1=h1[rows, cls], seed=seed)))
    return pd.concat(parts) if parts else pd.DataFrame(columns=['h0', 'h1', 'seed'])


def fig2_points(runs) -> dict:
    """subset -> frame of AP stats (mean, std, n) per training ratio (w/o PRM), plus the PRM
    (1:1, 1:9) stats under 'PRM'."""
    def stats(values):
        return dict(seed_stats(values), seeds=','.join(str(s) for s in values.index))

    out = {}
    for subset, metric in specs.FIG2_SUBSETS.items():
        rows = {r: stats(finals(runs, dict(ratios=r), metric)) for r in specs.FIG2_RATIOS}
        rows['PRM'] = stats(finals(runs, specs.PRM, metric))
        out[subset] = pd.DataFrame(rows).T
    return out


def fewer_positive_head(ratios: str) -> int:
    fractions = pos_fractions(ratios)
    return int(np.argmin(fractions))
