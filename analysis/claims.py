"""The paper's qualitative claims as verdicts from 95% intervals (analysis.intervals): holds
(the interval of the claimed difference lies on the claimed side of the claim's threshold),
contradicted (on the other side), inconclusive (it straddles), not enough runs (a side has no
run, or one seed where only seeds give the interval). Each claim shows Δ, its interval, the
method, the seeds and the images behind it; the evidence gives mean ± std (n) of both sides."""
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis import intervals, measures, paper_values, specs
from analysis.intervals import CONTRADICTED, HOLDS, INCONCLUSIVE, NOT_ENOUGH, Interval
from analysis.runs import seed_stats

VERDICTS = (HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_ENOUGH)


@dataclass
class Claim:
    id: str
    source: str
    claim: str
    verdict: str
    delta: float
    ci_low: float
    ci_high: float
    method: str
    seeds: str
    images: str
    evidence: str


def _claim(cid, source, text, iv: Interval, evidence, seeds, above=None, below=None):
    return Claim(cid, source, text, intervals.verdict(iv, above, below), iv.delta, iv.low,
                 iv.high, iv.method, seeds, str(iv.images or ''), evidence)


def _missing(cid, source, text, evidence, seeds=''):
    return Claim(cid, source, text, NOT_ENOUGH, np.nan, np.nan, np.nan, '', seeds, '',
                 evidence)


def _stat(values: pd.Series, d=1) -> str:
    s = seed_stats(values)
    std = '' if np.isnan(s['std']) else f' ± {s["std"]:.{d}f}'
    return f'{s["mean"]:.{d}f}{std} (n={s["n"]})'


def _seeds(**series) -> str:
    return '; '.join(f'{name}: {",".join(str(s) for s in v.index)}' for name, v in series.items()
                     if len(v))


def _compare(cid, source, text, better: dict, worse: dict, lower_is_better=False, d=1,
             boot=None, paired=False):
    """Claim that BETTER ({label: per-seed series}) beats WORSE: Δ = better − worse > 0 (< 0
    when lower is better). ``boot``: (RecordBootstrap, runs of better, runs of worse, metric
    of better, metric of worse) for a seeds × images interval; else (or when a run lacks its
    record) the interval is over seeds, of the per-seed differences when ``paired`` (both
    sides measured on the same runs)."""
    (bl, b), (wl, w) = next(iter(better.items())), next(iter(worse.items()))
    seeds = _seeds(**{bl: b, wl: w})
    if not len(b) or not len(w):
        missing = ', '.join(label for label, v in (*better.items(), *worse.items()) if not len(v))
        return _missing(cid, source, text, f'no value (not run or not logged): {missing}', seeds)
    iv = intervals.over_seeds(b.sub(w).dropna()) if paired else intervals.over_seeds(b, w)
    note = ''
    if boot is not None:
        got = boot[0].compare(*boot[1:])
        if isinstance(got, Interval):
            got.delta, iv = iv.delta, got
        else:
            note = f' (no seeds × images interval: {got})'
    evidence = f'{bl} {_stat(b, d)} vs {wl} {_stat(w, d)}; Δ {iv.delta:+.{d + 1}f}{note}'
    side = dict(below=0.0) if lower_is_better else dict(above=0.0)
    return _claim(cid, source, text, iv, evidence, seeds, **side)


def _weakest(verdicts) -> str:
    """The verdict of a claim made of parts: contradicted if one part is, else inconclusive if
    one part is, else not enough runs if one part lacks an interval, else holds."""
    return next(v for v in (CONTRADICTED, INCONCLUSIVE, NOT_ENOUGH, HOLDS) if v in verdicts)


def _all_pairs(cid, source, text, pairs, lower_is_better=False, boot=None, paired=False,
               prefix=True):
    """Claim over several (label, better, worse[, boot args]) comparisons: holds if every pair
    with runs holds, contradicted if one is contradicted, else inconclusive; Δ and interval
    are the least favourable pair's. Not enough runs if no pair has runs. Each side is named
    '<label> <side label>', or with ``prefix=False`` by its side label alone."""
    def name(label, side):
        return f'{label} {side}'.strip() if prefix else side

    parts = [_compare(cid, source, text, {name(label, bl): b}, {name(label, wl): w},
                      lower_is_better,
                      boot=None if boot is None else boot(label), paired=paired)
             for label, (bl, b), (wl, w) in pairs]
    measured = [p for p in parts if p.verdict != NOT_ENOUGH or not np.isnan(p.delta)]
    evidence = ' | '.join(p.evidence for p in parts)
    seeds = ' | '.join(p.seeds for p in parts if p.seeds)
    if not measured:
        return _missing(cid, source, text, evidence, seeds)
    verdict = _weakest({p.verdict for p in measured})
    worst = min(measured, key=lambda p: (-p.ci_high if lower_is_better else p.ci_low)
                if not np.isnan(p.ci_low) else -np.inf)
    return Claim(cid, source, text, verdict, worst.delta, worst.ci_low, worst.ci_high,
                 worst.method, seeds, worst.images, evidence)


def _seed_ids(values) -> str:
    return ','.join(str(s) for s in values.index)


def fig1a(runs):
    text = ('positive proposals are scarce early and rise: mean positives per image in the first '
            '10% of iterations < in the last 10%')
    data = measures.curves(runs, specs.BASELINE, ['train/num_pos/h0']).get('train/num_pos/h0')
    if data is None:
        return _missing('fig1a', 'Fig. 1a', text, 'no baseline run with num_pos')
    late, early = measures.window_mean(data, 0.9, 1.0), measures.window_mean(data, 0, 0.1)
    iv = intervals.over_seeds(late - early)  # paired: both windows of each run
    return _claim('fig1a', 'Fig. 1a', text, iv,
                  f'late {_stat(late)} vs early {_stat(early)}; Δ {iv.delta:+.2f}',
                  _seed_ids(late), above=0.0)


def _spearman(x, y):
    """Spearman's ρ of each row of X and Y: Pearson's r of their ranks (ties averaged); NaN for
    a row of one value (e.g. a resample of one GT count)."""
    x, y = (pd.DataFrame(v).rank(axis=1).to_numpy() for v in (x, y))
    x, y = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        return (x * y).sum(1) / np.sqrt((x * x).sum(1) * (y * y).sum(1))


def fig1b(runs):
    text = ('more GT instances -> more positive proposals of a trained RPN: Spearman ρ(GT count, '
            'positives) ≥ 0.3 over val images')
    table = measures.rpn_positives(runs)
    if len(table) < 3:
        return _missing('fig1b', 'Fig. 1b', text, 'no baseline rpn_pos_vs_gt.csv')
    gt, pos = table['num_gt'].to_numpy(), table['num_pos'].to_numpy()
    rows = np.random.default_rng(0).integers(0, len(table), (intervals.RESAMPLES, len(table)))
    rho = _spearman(gt[None], pos[None])[0]
    low, high = intervals.percentile_interval(_spearman(gt[rows], pos[rows]))
    iv = Interval(rho, low, high, f'images: bootstrap of ρ, B={intervals.RESAMPLES}', len(table))
    med = table.groupby('num_gt')['num_pos'].median()
    return _claim('fig1b', 'Fig. 1b', text, iv,
                  f'ρ = {rho:.2f} over {len(table)} images; median positives {med.iloc[0]:.0f} at '
                  f'{med.index[0]} GT, {med.iloc[-1]:.0f} at {med.index[-1]} GT',
                  ','.join(str(s) for s in sorted(table['seed'].unique())), above=0.3)


def _slope(points: pd.DataFrame) -> float:
    have = points[points['n'] > 0]
    x = [measures.pos_fractions(r)[0] for r in have.index]
    return float(np.polyfit(x, have['mean'].astype(float), 1)[0])


def _slope_interval(runs, metric) -> Interval:
    """Slope of AP vs positive fraction over the single-ratio runs, with a bootstrap of the
    seeds of each ratio (no interval when no ratio has two seeds)."""
    per = {r: measures.finals(runs, dict(ratios=r), metric) for r in specs.FIG2_RATIOS}
    per = {r: v for r, v in per.items() if len(v)}
    x = np.array([measures.pos_fractions(r)[0] for r in per])
    slope = float(np.polyfit(x, [v.mean() for v in per.values()], 1)[0])
    if all(len(v) < 2 for v in per.values()):
        return Interval(slope)
    rng = np.random.default_rng(0)
    means = np.stack([v.to_numpy()[rng.integers(0, len(v), (intervals.RESAMPLES, len(v)))]
                      .mean(1) for v in per.values()])  # (ratios, B)
    slopes = np.polyfit(x, means, 1)[0]
    low, high = intervals.percentile_interval(slopes)
    return Interval(slope, low, high, f'seeds: bootstrap per ratio, B={intervals.RESAMPLES}')


def fig2(runs):
    text = ('a higher positive sampling ratio helps crowded images and hurts sparse ones: slope of '
            'AP vs positive fraction > 0 on [8, ∞) and < 0 on [1, 3]')
    points = {k: v.drop('PRM') for k, v in measures.fig2_points(runs).items()}
    have = {k: v[v['n'] > 0] for k, v in points.items()}
    if any(len(v) < 2 for v in have.values()):
        return _missing('fig2', 'Fig. 2', text, 'needs at least two training ratios with runs; '
                        'have: ' + ', '.join(have['[1, 3]'].index))
    sparse = _slope_interval(runs, specs.FIG2_SUBSETS['[1, 3]'])
    crowded = _slope_interval(runs, specs.FIG2_SUBSETS['[8, ∞)'])
    verdicts = {intervals.verdict(crowded, above=0.0), intervals.verdict(sparse, below=0.0)}
    worst = crowded if intervals.verdict(crowded, above=0.0) != HOLDS else sparse
    evidence = '; '.join(f'{k}: ' + ', '.join(f'{r} {m:.1f} (n={int(n)})' for r, m, n in zip(
        v.index, v['mean'], v['n'])) for k, v in have.items())
    seeds = '; '.join(f'{r}: {s}' for r, s in have['[1, 3]']['seeds'].items())
    claim = _claim('fig2', 'Fig. 2', text, worst,
                   f'slope [1, 3] {sparse.delta:+.1f} [{sparse.low:+.1f}, {sparse.high:+.1f}], '
                   f'[8, ∞) {crowded.delta:+.1f} [{crowded.low:+.1f}, {crowded.high:+.1f}] AP '
                   f'per unit fraction; {evidence}', seeds)
    claim.verdict = _weakest(verdicts)
    return claim


def fig2_prm(runs, boot):
    text = 'PRM (1:1, 1:9) beats every single training ratio on both GT-count subsets'
    pts = measures.fig2_points(runs)
    pairs = []
    for subset, v in pts.items():
        single = v.drop('PRM')
        single = single[single['n'] > 0]
        if v.loc['PRM', 'n'] == 0 or not len(single):
            return _missing('fig2_prm', 'Fig. 2', text,
                            f'{subset}: needs PRM and single-ratio runs')
        best = single['mean'].astype(float).idxmax()
        metric = specs.FIG2_SUBSETS[subset]
        pairs.append((subset, ('PRM', measures.finals(runs, specs.PRM, metric)),
                      (f'best single {best}', measures.finals(runs, dict(ratios=best), metric)),
                      (specs.PRM, dict(ratios=best), metric)))
    return _all_pairs('fig2_prm', 'Fig. 2', text, [p[:3] for p in pairs],
                      boot=lambda label: _boot(runs, boot, *dict(
                          (p[0], p[3]) for p in pairs)[label]))


def fig3(runs):
    keys = ['train/acc_pos/h0', 'train/acc_neg/h0']
    base = measures.curves(runs, specs.BASELINE, keys)
    rga = measures.curves(runs, specs.RGA, keys)
    pos_text = ('RGA raises the training accuracy of positive proposals early: mean over the '
                'first half of the iterations, RGA > baseline')
    neg_text = ('RGA leaves the training accuracy of negative proposals about unchanged: '
                '|mean RGA − mean baseline| over training ≤ 1% of the baseline mean')
    out = []
    if keys[0] in base and keys[0] in rga:
        out.append(_compare('fig3_pos', 'Fig. 3 Left', pos_text,
                            {'RGA': measures.window_mean(rga[keys[0]], 0, 0.5)},
                            {'baseline': measures.window_mean(base[keys[0]], 0, 0.5)}, d=3))
    else:
        out.append(_missing('fig3_pos', 'Fig. 3 Left', pos_text,
                            'needs baseline and RGA runs with acc_pos'))
    if keys[1] in base and keys[1] in rga:
        b, r = base[keys[1]].mean(), rga[keys[1]].mean()
        iv = intervals.over_seeds(r, b)
        band = 0.01 * abs(b.mean())
        out.append(_claim('fig3_neg', 'Fig. 3 Middle', neg_text, iv,
                          f'RGA {_stat(r, 3)} vs baseline {_stat(b, 3)}; Δ {iv.delta:+.4f}, '
                          f'band ±{band:.4f}', _seeds(RGA=r, baseline=b),
                          above=-band, below=band))
    else:
        out.append(_missing('fig3_neg', 'Fig. 3 Middle', neg_text,
                            'needs baseline and RGA runs with acc_neg'))
    return out


def fig5(runs):
    out = []
    for label, keys in specs.FIG5_KEYS.items():
        cid = 'fig5_' + ('prm' if label == 'PRM' else 'mask')
        src = 'Fig. 5 ' + ('Left' if label == 'PRM' else 'Right')
        text = (f'{label}: the norm of the summed gradient is smaller than the sum of the norms, '
                '‖g1 + g2‖ < ‖g1‖ + ‖g2‖, at ≥ 99% of the logged iterations')
        data = measures.curves(runs, specs.PRM if label == 'PRM' else specs.MASK, keys)
        if not all(k in data for k in keys):
            out.append(_missing(cid, src, text, f'no {label} run with {keys[-1]}'))
            continue
        a, b, total = (data[k] for k in keys)
        share = (total < a + b).where((a + b).notna()).mean() * 100
        ratio = (total / (a + b)).mean()
        out.append(_claim(cid, src, text, intervals.over_seeds(share),
                          f'share of iterations {_stat(share)}%; mean ‖g1+g2‖/(‖g1‖+‖g2‖) '
                          f'{_stat(ratio, 3)}', _seed_ids(share), above=99.0 - 1e-9))
    return out


def fig6(runs):
    text = ('the head trained with fewer positives (1:9) predicts lower scores than the 1:1 head: '
            'mean score R-CNN2 < R-CNN1')
    scores = measures.head_scores(runs)
    if not len(scores):
        return _missing('fig6', 'Fig. 6', text, 'no PRM run with scores.npz')
    fewer = measures.fewer_positive_head(specs.PRM['ratios'])
    per_seed = scores.groupby('seed')[['h0', 'h1']].mean()
    share = 100 * ((scores['h0'] - scores['h1']).abs() > 0.1).mean()
    iv = intervals.over_seeds(per_seed[f'h{fewer}'] - per_seed[f'h{1 - fewer}'])  # paired
    return _claim('fig6', 'Fig. 6', text, iv,
                  f'mean score R-CNN1 {_stat(per_seed["h0"], 3)}, R-CNN2 {_stat(per_seed["h1"], 3)}'
                  f' over {len(scores)} proposals; |diff| > 0.1 for {share:.1f}% of pairs (paper '
                  f'{paper_values.FIG6_SHARE_DIFF_GT_01}%)', _seed_ids(per_seed), below=0.0)


def _boot(runs, boot, better, worse, metric_b, metric_w=None):
    """Arguments of a seeds × images interval: the two selectors' finished runs."""
    return (boot, runs.select(better), runs.select(worse), metric_b, metric_w or metric_b)


def table_claims(runs, boot=None):
    boot = boot or intervals.RecordBootstrap(runs)
    f = measures.finals
    ap, h0, h1 = specs.AP, specs.H0, specs.H1
    sep = dict(specs.PRM, ensemble='separate')
    rga_prm = dict(specs.PRM, **specs.RGA)
    constant = dict(lambda0=7.0, anneal=False)
    ratios = ('1:1', '1:3', '1:5', '1:7')
    out = [
        _compare('table2_rga', 'Table 2', 'RGA beats the baseline (Faster R-CNN R50 1x, AP)',
                 {'RGA': f(runs, specs.RGA, ap)}, {'baseline': f(runs, specs.BASELINE, ap)},
                 boot=_boot(runs, boot, specs.RGA, specs.BASELINE, ap)),
        _compare('table2_prm', 'Table 2', 'PRM adds to RGA (RGA+PRM beats RGA, AP)',
                 {'RGA+PRM': f(runs, rga_prm, ap)}, {'RGA': f(runs, specs.RGA, ap)},
                 boot=_boot(runs, boot, rga_prm, specs.RGA, ap)),
        _compare('table4', 'Table 4', 'annealing beats a constant λ0 = 7 (AP)',
                 {'annealed': f(runs, specs.RGA, ap)}, {'constant': f(runs, constant, ap)},
                 boot=_boot(runs, boot, specs.RGA, constant, ap)),
        _all_pairs('table1_heads', 'Tables 1, 5',
                   'each PRM head beats the same ratio trained alone (AP)', [
                       ('1:1', ('in PRM', f(runs, specs.PRM, h0)),
                        ('alone', f(runs, dict(ratios='1:1'), ap))),
                       ('1:9', ('in PRM', f(runs, specs.PRM, h1)),
                        ('alone', f(runs, dict(ratios='1:9'), ap)))],
                   boot=lambda label: _boot(runs, boot, specs.PRM, dict(ratios=label),
                                            h0 if label == '1:1' else h1, ap)),
        _all_pairs('table1_ensemble', 'Tables 1, 5', 'the PRM ensemble beats each of its heads',
                   [(name, ('ensemble', f(runs, specs.PRM, ap)),
                     (f'{name} alone', f(runs, specs.PRM, m)))
                    for name, m in (('R-CNN1', h0), ('R-CNN2', h1))],
                   boot=lambda label: _boot(runs, boot, specs.PRM, specs.PRM, ap,
                                            h0 if label == 'R-CNN1' else h1), paired=True,
                   prefix=False),
        _compare('table5_x2', 'Table 5',
                 'PRM beats two separately trained detectors (1:1, 1:9) ensembled (AP)',
                 {'PRM': f(runs, specs.PRM, ap)}, {'Faster R-CNNx2': f(runs, sep, ap)},
                 boot=_boot(runs, boot, specs.PRM, sep, ap)),
        _all_pairs('table6', 'Table 6',
                   'a third head (1:3) does not help: AP of two heads ≥ three',
                   [('w/o RGA', ('2 heads', f(runs, specs.PRM, ap)),
                     ('3 heads', f(runs, specs.PRM3, ap))),
                    ('w/ RGA', ('2 heads', f(runs, rga_prm, ap)),
                     ('3 heads', f(runs, dict(specs.PRM3, **specs.RGA), ap)))],
                   boot=lambda label: _boot(runs, boot, *(
                       (specs.PRM, specs.PRM3) if label == 'w/o RGA'
                       else (rga_prm, dict(specs.PRM3, **specs.RGA))), ap)),
        _all_pairs('table8', 'Table 8', 'soft sampling beats hard sampling at every ratio (AP)',
                   [(r, ('soft', f(runs, dict(ratios=r), ap)),
                     ('hard', f(runs, dict(ratios=r, sampling='hard'), ap))) for r in ratios],
                   boot=lambda label: _boot(runs, boot, dict(ratios=label),
                                            dict(ratios=label, sampling='hard'), ap)),
        _compare('table7', 'Table 7', 'RGA+PRM lowers the CrowdHuman mMR of the baseline',
                 {'RGA+PRM': f(runs, dict(rga_prm, dataset='crowdhuman'), 'val/mMR')},
                 {'baseline': f(runs, dict(dataset='crowdhuman'), 'val/mMR')},
                 lower_is_better=True, d=2,
                 boot=_boot(runs, boot, dict(rga_prm, dataset='crowdhuman'),
                            dict(dataset='crowdhuman'), 'val/mMR')),
    ]
    return out


def interval_text(claim) -> str:
    """'+0.42 [-0.10, +0.95]' (Δ and its 95% interval) as the report and dashboard show it."""
    if pd.isna(claim.delta):
        return '-'
    d = 3 if abs(claim.delta) < 0.1 and claim.delta != 0 else 2
    if pd.isna(claim.ci_low):
        return f'{claim.delta:+.{d}f} (no interval)'
    return f'{claim.delta:+.{d}f} [{claim.ci_low:+.{d}f}, {claim.ci_high:+.{d}f}]'


def _text(value) -> str:
    """A text cell of the claims frame, whether built or read back from claims.csv (where an
    empty cell is NaN and a count a float)."""
    if isinstance(value, str):
        return value
    return '' if pd.isna(value) else f'{value:g}'


def cell(text) -> str:
    """TEXT in a Markdown table cell, its bars escaped."""
    return str(text).replace('|', '\\|')


def summary(claims: pd.DataFrame, prefix: str = '') -> str:
    """The verdicts counted, then each claim with its Δ, interval, what is behind it (seeds and
    images) and a link to its figure or table: the top of report.md and the README's verdict
    summary (tools/readme_verdicts.py). PREFIX is the report folder as seen from the page."""
    from analysis.figures import FIGURES
    counts = claims['verdict'].value_counts()
    lines = [f'Of the paper\'s {len(claims)} claims: '
             + ', '.join(f'**{counts.get(v, 0)} {v}**' for v in VERDICTS) + '.', '',
             '| claim | verdict | Δ [95% CI] | behind it | see |', '|---|---|---|---|---|']
    for c in claims.itertuples():
        name = c.id.split('_')[0]
        link = f'figures/{name}.png' if name in FIGURES else f'tables/{name}.md'
        images = _text(c.images)
        behind = _text(c.evidence) if c.verdict == NOT_ENOUGH else '; '.join(
            part for part in (_text(c.method), images and f'{images} images') if part)
        lines.append(f'| {cell(c.claim)} | **{c.verdict}** | {interval_text(c)} | '
                     f'{cell(behind) or "-"} | [{c.source}]({prefix}{link}) |')
    return '\n'.join(lines) + '\n'


def check_all(runs, boot=None) -> pd.DataFrame:
    boot = boot or intervals.RecordBootstrap(runs)
    claims = [fig1a(runs), fig1b(runs), fig2(runs), fig2_prm(runs, boot), *fig3(runs),
              *fig5(runs), fig6(runs), *table_claims(runs, boot)]
    return pd.DataFrame([asdict(c) for c in claims])
