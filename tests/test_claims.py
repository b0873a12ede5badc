"""Every claim check says "holds" on a store that carries the paper's effects and
"contradicted" on one where they are reversed, each through the store-writing path
(mlflow_store.write_store) and the claim's own run selection and threshold; its Δ and evidence
are the logged values, recomputed here from what was written."""
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy.stats import spearmanr

from analysis import claims, runs, specs
from mlflow_store import histories, write_store

SUITE, SEEDS, STEPS = 'claims', (0, 1, 2), 20
# arm -> (suite params as logged, AP in %); the reversed store mirrors each AP about 30
ARMS = {
    'baseline': ({}, 30.0), 'RGA': (dict(lambda0='7.0'), 31.5),
    'PRM': (dict(ratios='1:1,1:9'), 31.5), 'RGA+PRM': (dict(lambda0='7.0', ratios='1:1,1:9'), 33.0),
    'constant': (dict(lambda0='7.0', anneal='false'), 30.0),
    **{r: (dict(ratios=r), ap) for r, ap in (('1:1', 29.5), ('1:5', 29.8), ('1:7', 29.4),
                                            ('1:9', 29.0))},
    **{f'hard {r}': (dict(ratios=r, sampling='hard'), ap - 1.5)
       for r, ap in (('1:1', 29.5), ('1:3', 30.0), ('1:5', 29.8), ('1:7', 29.4))},
    'x2': (dict(ratios='1:1,1:9', ensemble='separate'), 30.0),
    'PRM3': (dict(ratios='1:1,1:9,1:3'), 30.0),
    'RGA+PRM3': (dict(lambda0='7.0', ratios='1:1,1:9,1:3'), 31.5),
    'mask': (dict(detector='mask_rcnn'), 31.0),
    'crowd': (dict(dataset='crowdhuman'), 30.0),
    'crowd RGA+PRM': (dict(dataset='crowdhuman', lambda0='7.0', ratios='1:1,1:9'), 33.0),
}


@pytest.fixture(scope='module', params=[1, -1], ids=['effects', 'reversed'])
def checked(request, tmp_path_factory):
    """(sign, store, claims frame by id) of one store: effects as the paper's, or reversed."""
    sign = request.param
    trials = [(SUITE, p, SEEDS, ap if sign > 0 else 60 - ap) for p, ap in ARMS.values()]
    store = write_store(str(tmp_path_factory.mktemp('claims')), trials, broken=None,
                        steps=STEPS, sign=sign)
    loaded = runs.Runs([SUITE], store['uri'], cache_dir=str(tmp_path_factory.mktemp('cache')))
    return sign, store, claims.check_all(loaded).set_index('id')


def trial_name(params, seed):
    return ';'.join(f'{k}={v}' for k, v in {**params, 'seed': seed}.items())


def logged(store, arm, metric):
    """Per seed, the final METRIC (%) the store logged for ARM."""
    params = ARMS[arm][0]
    return pd.Series({s: 100 * store['logged'][SUITE, trial_name(params, s), s][metric]
                      for s in SEEDS})


def curve(arm, key, sign):
    """Per seed, the metric history the store logged for ARM (steps 0..STEPS-1)."""
    return {s: histories(ARMS[arm][0], s, STEPS, sign)[key] for s in SEEDS}


def artifact(store, arm, seed, path):
    """A local copy of the artifact PATH of ARM's run of SEED."""
    client = MlflowClient(store['uri'])
    (run, ) = client.search_runs(
        [client.get_experiment_by_name(SUITE).experiment_id],
        filter_string=f"tags.trial = '{trial_name(ARMS[arm][0], seed)}'")
    return client.download_artifacts(run.info.run_id, path)


def stat(values, d=1):
    return f'{np.mean(values):.{d}f} ± {np.std(values, ddof=1):.{d}f} (n={len(values)})'


def compared(store, better, worse, metric=specs.AP, metric_w=None):
    """Δ of the means and the evidence text of both sides, from the logged values."""
    b, w = logged(store, better, metric), logged(store, worse, metric_w or metric)
    return b.mean() - w.mean(), [stat(b), stat(w)]


AP, H0, H1 = specs.AP, specs.H0, specs.H1
SUBSETS = specs.FIG2_SUBSETS


SINGLE = {'1:1': '1:1', '1:3': 'baseline', '1:5': '1:5', '1:7': '1:7', '1:9': '1:9'}  # ratio: arm


def fig2_slopes(store):
    """Slope of each subset's mean AP against the positive fraction of the single-ratio arms."""
    x = [1 / (1 + int(r[2:])) for r in SINGLE]
    return {subset: np.polyfit(x, [logged(store, a, m).mean() for a in SINGLE.values()], 1)[0]
            for subset, m in SUBSETS.items()}


def best_single(store, metric):
    return max(SINGLE.values(), key=lambda a: logged(store, a, metric).mean())


def expected(cid, store, sign):
    """(Δs, strings the evidence must hold) of claim CID, from what the store logged: one Δ,
    or one per pair for a claim over several (its Δ is the least favourable pair's)."""
    pairs = {
        'table2_rga': [('RGA', 'baseline', AP)], 'table2_prm': [('RGA+PRM', 'RGA', AP)],
        'table4': [('RGA', 'constant', AP)], 'table5_x2': [('PRM', 'x2', AP)],
        'table1_heads': [('PRM', '1:1', H0, AP), ('PRM', '1:9', H1, AP)],
        'table1_ensemble': [('PRM', 'PRM', AP, H0), ('PRM', 'PRM', AP, H1)],
        'table6': [('PRM', 'PRM3', AP), ('RGA+PRM', 'RGA+PRM3', AP)],
        'table8': [(r, f'hard {r}', AP) for r in ('1:1', '1:5', '1:7')] +
                  [('baseline', 'hard 1:3', AP)],
        'fig2_prm': [('PRM', best_single(store, m), m) for m in SUBSETS.values()],
    }
    if cid in pairs:
        parts = [compared(store, *p) for p in pairs[cid]]
        return [d for d, _ in parts], [s for _, strings in parts for s in strings]
    if cid == 'table7':  # lower mMR is better: Δ = RGA+PRM − baseline < 0
        b, w = logged(store, 'crowd RGA+PRM', 'val/mMR'), logged(store, 'crowd', 'val/mMR')
        return b.mean() - w.mean(), [stat(b, 2), stat(w, 2)]
    if cid == 'fig1a':
        h = curve('baseline', 'train/num_pos/h0', sign)
        n = STEPS // 10  # the first and the last 10% of the iterations
        late, early = [h[s][-n:].mean() for s in SEEDS], [h[s][:n].mean() for s in SEEDS]
        return np.mean(late) - np.mean(early), [stat(late), stat(early)]
    if cid == 'fig1b':
        table = pd.concat(pd.read_csv(artifact(store, 'baseline', s, 'rpn_pos_vs_gt.csv'))
                          for s in SEEDS)
        rho = spearmanr(table['num_gt'], table['num_pos'])[0]
        return rho, [f'ρ = {rho:.2f} over {len(table)} images']
    if cid == 'fig2':
        slopes = fig2_slopes(store)
        # Δ: the crowded slope where it does not hold, else the sparse one
        return (slopes['[1, 3]'] if sign > 0 else slopes['[8, ∞)'],
                [f'slope [1, 3] {slopes["[1, 3]"]:+.1f}', f'[8, ∞) {slopes["[8, ∞)"]:+.1f}'])
    if cid in ('fig3_pos', 'fig3_neg'):
        key, part = (('train/acc_pos/h0', slice(STEPS // 2)) if cid == 'fig3_pos'
                     else ('train/acc_neg/h0', slice(None)))
        r, b = ([v[part].mean() for v in curve(arm, key, sign).values()]
                for arm in ('RGA', 'baseline'))
        return np.mean(r) - np.mean(b), [stat(r, 3), stat(b, 3)]
    if cid in ('fig5_prm', 'fig5_mask'):
        arm, heads = (('PRM', ('h0', 'h1')) if cid == 'fig5_prm' else ('mask', ('bbox', 'mask')))
        share = []
        for h in (histories(ARMS[arm][0], s, STEPS, sign) for s in SEEDS):
            a, b = (h[f'train/grad_fnorm/{k}'] for k in heads)
            share.append(100 * np.mean(h['train/grad_fnorm/sum'] < a + b))
        return np.mean(share), [f'share of iterations {stat(share)}%']
    if cid == 'fig6':
        means = {0: [], 1: []}
        for s in SEEDS:
            with np.load(artifact(store, 'PRM', s, 'scores.npz')) as data:
                h0, h1 = data['h0'][:, :-1], data['h1'][:, :-1]  # foreground classes
            top = (h0 + h1).argmax(1)  # the class both heads together rank first
            rows = np.arange(len(top))
            means[0].append(h0[rows, top].mean())
            means[1].append(h1[rows, top].mean())
        delta = np.mean(means[1]) - np.mean(means[0])  # the 1:9 head − the 1:1 head
        return delta, [f'R-CNN1 {stat(means[0], 3)}', f'R-CNN2 {stat(means[1], 3)}']
    raise AssertionError(f'no expectation for claim {cid}')


CLAIM_IDS = ['fig1a', 'fig1b', 'fig2', 'fig2_prm', 'fig3_pos', 'fig3_neg', 'fig5_prm',
             'fig5_mask', 'fig6', 'table2_rga', 'table2_prm', 'table4', 'table1_heads',
             'table1_ensemble', 'table5_x2', 'table6', 'table8', 'table7']


def test_every_claim_is_covered(checked):
    assert sorted(checked[2].index) == sorted(CLAIM_IDS)


@pytest.mark.parametrize('cid', CLAIM_IDS)
def test_claim_says_yes_or_no_on_the_logged_values(checked, cid):
    sign, store, frame = checked
    claim = frame.loc[cid]
    assert claim['verdict'] == (claims.HOLDS if sign > 0 else claims.CONTRADICTED), (
        cid, claim['verdict'], claim['ci_low'], claim['ci_high'], claim['evidence'])
    if cid == 'table1_ensemble':  # each side named once: the ensemble, the head alone
        assert 'ensemble ' in claim['evidence'] and 'R-CNN2 alone ' in claim['evidence']
        assert 'R-CNN1 R-CNN1' not in claim['evidence'], claim['evidence']
    deltas, texts = expected(cid, store, sign)
    assert any(claim['delta'] == pytest.approx(d, rel=1e-6) for d in np.atleast_1d(deltas)), (
        deltas, claim['evidence'])
    for text in texts:
        assert text in claim['evidence'], (text, claim['evidence'])
