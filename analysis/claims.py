"""The paper's qualitative claims as measured verdicts: holds / does not hold / not enough runs,
each with the numbers and seeds behind it. Comparisons use the means over seeds; the evidence
shows mean ± std and n so a reader can judge the margin. Thresholds are stated in each claim."""
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis import measures, paper_values, specs
from analysis.runs import seed_stats

HOLDS, FAILS, NOT_ENOUGH = 'holds', 'does not hold', 'not enough runs'


@dataclass
class Claim:
    id: str
    source: str
    claim: str
    verdict: str
    evidence: str
    seeds: str


def _stat(values: pd.Series, d=1) -> str:
    s = seed_stats(values)
    std = '' if np.isnan(s['std']) else f' ± {s["std"]:.{d}f}'
    return f'{s["mean"]:.{d}f}{std} (n={s["n"]})'


def _seeds(**series) -> str:
    return '; '.join(f'{name}: {",".join(str(s) for s in v.index)}' for name, v in series.items()
                     if len(v))


def _compare(cid, source, text, better: dict, worse: dict, lower_is_better=False, d=1):
    """Claim that the mean of BETTER ({label: per-seed series}) beats that of WORSE."""
    (bl, b), (wl, w) = next(iter(better.items())), next(iter(worse.items()))
    if not len(b) or not len(w):
        missing = ', '.join(label for label, v in (*better.items(), *worse.items()) if not len(v))
        return Claim(cid, source, text, NOT_ENOUGH, f'no value (not run or not logged): {missing}',
                     _seeds(**{bl: b, wl: w}))
    holds = b.mean() < w.mean() if lower_is_better else b.mean() > w.mean()
    return Claim(cid, source, text, HOLDS if holds else FAILS,
                 f'{bl} {_stat(b, d)} vs {wl} {_stat(w, d)}; Δ {b.mean() - w.mean():+.{d + 1}f}',
                 _seeds(**{bl: b, wl: w}))


def _all_pairs(cid, source, text, pairs, lower_is_better=False):
    """Claim over several (label, better, worse) comparisons: holds if every pair that has runs
    holds, not enough runs if none has."""
    parts = [_compare(cid, source, text, {f'{label} {bl}'.strip(): b},
                      {f'{label} {wl}'.strip(): w},
                      lower_is_better) for label, (bl, b), (wl, w) in pairs]
    measured = [p for p in parts if p.verdict != NOT_ENOUGH]
    verdict = NOT_ENOUGH if not measured else (
        HOLDS if all(p.verdict == HOLDS for p in measured) else FAILS)
    return Claim(cid, source, text, verdict, ' | '.join(p.evidence for p in parts),
                 ' | '.join(p.seeds for p in parts if p.seeds))


def fig1a(runs):
    text = ('positive proposals are scarce early and rise: mean positives per image in the first '
            '10% of iterations < in the last 10%')
    data = measures.curves(runs, specs.BASELINE, ['train/num_pos/h0']).get('train/num_pos/h0')
    if data is None:
        return Claim('fig1a', 'Fig. 1a', text, NOT_ENOUGH, 'no baseline run with num_pos', '')
    return _compare('fig1a', 'Fig. 1a', text, {'late': measures.window_mean(data, 0.9, 1.0)},
                    {'early': measures.window_mean(data, 0, 0.1)})


def fig1b(runs):
    text = ('more GT instances -> more positive proposals of a trained RPN: Spearman ρ(GT count, '
            'positives) ≥ 0.3 over val images')
    table = measures.rpn_positives(runs)
    if len(table) < 3:
        return Claim('fig1b', 'Fig. 1b', text, NOT_ENOUGH, 'no baseline rpn_pos_vs_gt.csv', '')
    rho = table['num_gt'].corr(table['num_pos'], method='spearman')
    med = table.groupby('num_gt')['num_pos'].median()
    return Claim('fig1b', 'Fig. 1b', text, HOLDS if rho >= 0.3 else FAILS,
                 f'ρ = {rho:.2f} over {len(table)} images; median positives {med.iloc[0]:.0f} at '
                 f'{med.index[0]} GT, {med.iloc[-1]:.0f} at {med.index[-1]} GT',
                 ','.join(str(s) for s in sorted(table['seed'].unique())))


def _slope(points: pd.DataFrame) -> float:
    have = points[points['n'] > 0]
    x = [measures.pos_fractions(r)[0] for r in have.index]
    return float(np.polyfit(x, have['mean'].astype(float), 1)[0])


def fig2(runs):
    text = ('a higher positive sampling ratio helps crowded images and hurts sparse ones: slope of '
            'AP vs positive fraction > 0 on [8, ∞) and < 0 on [1, 3]')
    points = {k: v.drop('PRM') for k, v in measures.fig2_points(runs).items()}
    have = {k: v[v['n'] > 0] for k, v in points.items()}
    if any(len(v) < 2 for v in have.values()):
        return Claim('fig2', 'Fig. 2', text, NOT_ENOUGH,
                     'needs at least two training ratios with runs; have: ' +
                     ', '.join(have['[1, 3]'].index), '')
    sparse, crowded = _slope(points['[1, 3]']), _slope(points['[8, ∞)'])
    evidence = '; '.join(f'{k}: ' + ', '.join(f'{r} {m:.1f} (n={int(n)})' for r, m, n in zip(
        v.index, v['mean'], v['n'])) for k, v in have.items())
    seeds = '; '.join(f'{r}: {s}' for r, s in have['[1, 3]']['seeds'].items())
    return Claim('fig2', 'Fig. 2', text, HOLDS if crowded > 0 > sparse else FAILS,
                 f'slope [1, 3] {sparse:+.1f}, [8, ∞) {crowded:+.1f} AP per unit fraction; '
                 f'{evidence}', seeds)


def fig2_prm(runs):
    text = 'PRM (1:1, 1:9) beats every single training ratio on both GT-count subsets'
    pts = measures.fig2_points(runs)
    evidence, holds = [], True
    for subset, v in pts.items():
        single = v.drop('PRM')
        single = single[single['n'] > 0]
        if v.loc['PRM', 'n'] == 0 or not len(single):
            return Claim('fig2_prm', 'Fig. 2', text, NOT_ENOUGH,
                         f'{subset}: needs PRM and single-ratio runs', '')
        best = single['mean'].astype(float).idxmax()
        holds &= v.loc['PRM', 'mean'] > single.loc[best, 'mean']
        evidence.append(f'{subset}: PRM {v.loc["PRM", "mean"]:.1f} (n={int(v.loc["PRM", "n"])}) '
                        f'vs best single {best} {single.loc[best, "mean"]:.1f}')
    return Claim('fig2_prm', 'Fig. 2', text, HOLDS if holds else FAILS, '; '.join(evidence), '')


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
        out.append(Claim('fig3_pos', 'Fig. 3 Left', pos_text, NOT_ENOUGH,
                         'needs baseline and RGA runs with acc_pos', ''))
    if keys[1] in base and keys[1] in rga:
        b, r = base[keys[1]].mean(), rga[keys[1]].mean()
        gap = abs(r.mean() - b.mean())
        out.append(Claim('fig3_neg', 'Fig. 3 Middle', neg_text,
                         HOLDS if gap <= 0.01 * abs(b.mean()) else FAILS,
                         f'RGA {_stat(r, 3)} vs baseline {_stat(b, 3)}; |Δ| {gap:.4f}',
                         _seeds(RGA=r, baseline=b)))
    else:
        out.append(Claim('fig3_neg', 'Fig. 3 Middle', neg_text, NOT_ENOUGH,
                         'needs baseline and RGA runs with acc_neg', ''))
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
            out.append(Claim(cid, src, text, NOT_ENOUGH, f'no {label} run with {keys[-1]}', ''))
            continue
        a, b, total = (data[k] for k in keys)
        share = (total < a + b).where((a + b).notna()).mean()
        ratio = (total / (a + b)).mean()
        out.append(Claim(cid, src, text, HOLDS if share.mean() >= 0.99 else FAILS,
                         f'share of iterations {_stat(share * 100)}%; '
                         f'mean ‖g1+g2‖/(‖g1‖+‖g2‖) '
                         f'{_stat(ratio, 3)}', ','.join(str(s) for s in share.index)))
    return out


def fig6(runs):
    text = ('the head trained with fewer positives (1:9) predicts lower scores than the 1:1 head: '
            'mean score R-CNN2 < R-CNN1')
    scores = measures.head_scores(runs)
    if not len(scores):
        return Claim('fig6', 'Fig. 6', text, NOT_ENOUGH, 'no PRM run with scores.npz', '')
    fewer = measures.fewer_positive_head(specs.PRM['ratios'])
    per_seed = scores.groupby('seed')[['h0', 'h1']].mean()
    share = 100 * ((scores['h0'] - scores['h1']).abs() > 0.1).mean()
    holds = per_seed[f'h{fewer}'].mean() < per_seed[f'h{1 - fewer}'].mean()
    return Claim('fig6', 'Fig. 6', text, HOLDS if holds else FAILS,
                 f'mean score R-CNN1 {_stat(per_seed["h0"], 3)}, R-CNN2 {_stat(per_seed["h1"], 3)}'
                 f' over {len(scores)} proposals; |diff| > 0.1 for {share:.1f}% of pairs (paper '
                 f'{paper_values.FIG6_SHARE_DIFF_GT_01}%)',
                 ','.join(str(s) for s in per_seed.index))


def table_claims(runs):
    f = measures.finals
    ap, h0, h1 = specs.AP, specs.H0, specs.H1
    sep = dict(specs.PRM, ensemble='separate')
    rga_prm = dict(specs.PRM, **specs.RGA)
    out = [
        _compare('table2_rga', 'Table 2', 'RGA beats the baseline (Faster R-CNN R50 1x, AP)',
                 {'RGA': f(runs, specs.RGA, ap)}, {'baseline': f(runs, specs.BASELINE, ap)}),
        _compare('table2_prm', 'Table 2', 'PRM adds to RGA (RGA+PRM beats RGA, AP)',
                 {'RGA+PRM': f(runs, rga_prm, ap)}, {'RGA': f(runs, specs.RGA, ap)}),
        _compare('table4', 'Table 4', 'annealing beats a constant λ0 = 7 (AP)',
                 {'annealed': f(runs, specs.RGA, ap)},
                 {'constant': f(runs, dict(lambda0=7.0, anneal=False), ap)}),
        _all_pairs('table1_heads', 'Tables 1, 5',
                   'each PRM head beats the same ratio trained alone (AP)', [
                       ('1:1', ('in PRM', f(runs, specs.PRM, h0)),
                        ('alone', f(runs, dict(ratios='1:1'), ap))),
                       ('1:9', ('in PRM', f(runs, specs.PRM, h1)),
                        ('alone', f(runs, dict(ratios='1:9'), ap)))]),
        _all_pairs('table1_ensemble', 'Tables 1, 5', 'the PRM ensemble beats each of its heads',
                   [('', ('ensemble', f(runs, specs.PRM, ap)), (name, f(runs, specs.PRM, m)))
                    for name, m in (('R-CNN1', h0), ('R-CNN2', h1))]),
        _compare('table5_x2', 'Table 5',
                 'PRM beats two separately trained detectors (1:1, 1:9) ensembled (AP)',
                 {'PRM': f(runs, specs.PRM, ap)}, {'Faster R-CNNx2': f(runs, sep, ap)}),
        _all_pairs('table6', 'Table 6',
                   'a third head (1:3) does not help: AP of two heads ≥ three',
                   [('w/o RGA', ('2 heads', f(runs, specs.PRM, ap)),
                     ('3 heads', f(runs, specs.PRM3, ap))),
                    ('w/ RGA', ('2 heads', f(runs, rga_prm, ap)),
                     ('3 heads', f(runs, dict(specs.PRM3, **specs.RGA), ap)))]),
        _all_pairs('table8', 'Table 8', 'soft sampling beats hard sampling at every ratio (AP)',
                   [(r, ('soft', f(runs, dict(ratios=r), ap)),
                     ('hard', f(runs, dict(ratios=r, sampling='hard'), ap)))
                    for r in ('1:1', '1:3', '1:5', '1:7')]),
        _compare('table7', 'Table 7', 'RGA+PRM lowers the CrowdHuman mMR of the baseline',
                 {'RGA+PRM': f(runs, dict(rga_prm, dataset='crowdhuman'), 'val/mMR')},
                 {'baseline': f(runs, dict(dataset='crowdhuman'), 'val/mMR')},
                 lower_is_better=True, d=2),
    ]
    return out


def check_all(runs) -> pd.DataFrame:
    claims = [fig1a(runs), fig1b(runs), fig2(runs), fig2_prm(runs), *fig3(runs), *fig5(runs),
              fig6(runs), *table_claims(runs)]
    return pd.DataFrame([asdict(c) for c in claims])
