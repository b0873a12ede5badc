"""Report on a fixture MLflow store: every table and figure is produced, cells are the seed
statistics of the logged values, missing runs say "not run", a failed run is reported."""
import filecmp
import os.path as osp
import statistics

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import claims, figures, measures, paper_values, report, specs, tables
from analysis.runs import Runs
from experiments import notes
from mlflow_store import mlflow_server
from prm_rga_cli import main
from prm_rga.errors import InputError
from test_cluster import free_port

MISSING = 'table7'  # asked for, never run


@pytest.fixture(scope='module')
def store(fixture_store):
    return fixture_store


@pytest.fixture(scope='module')
def built(store, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('report'))
    return report.build(store['suites'] + [MISSING], store['uri'], out, log=lambda msg: None)


def logged(store, suite, params, metric):
    name = ';'.join(f'{k}={v}' for k, v in params.items())
    return {seed: 100 * m[metric] for (s, n, seed), m in store['logged'].items()
            if s == suite and n == f'{name};seed={seed}'}


def cell(built, table, label, column):
    cells = built.tables[table]
    labels = paper_values.TABLES[table].labels
    mask = (cells['column'] == column)
    for name, value in zip(labels, label):
        mask &= cells[name] == value
    assert mask.sum() == 1
    return cells[mask].iloc[0]


def test_every_table_and_figure_is_written(built, tmp_path):
    for name in paper_values.TABLES:
        for ext in ('md', 'tex', 'csv'):
            assert osp.getsize(osp.join(built.out, 'tables', f'{name}.{ext}')) > 0
    assert set(built.figures) == {'fig1a', 'fig1b', 'fig2', 'fig3', 'fig5', 'fig6'}
    for paths in built.figures.values():
        for ext in ('png', 'pdf'):
            assert osp.getsize(paths[ext]) > 1000
    # the same runs draw the same files, byte for byte (a PDF carries no creation date)
    again = figures.write(built.runs, 'fig2', str(tmp_path))
    for ext in ('png', 'pdf'):
        assert filecmp.cmp(again[ext], built.figures['fig2'][ext], shallow=False), ext
    for name in ('claims.csv', 'runs.csv', 'report.md'):
        assert osp.getsize(osp.join(built.out, name)) > 0
    runs = pd.read_csv(osp.join(built.out, 'runs.csv'))
    assert len(runs) == len(built.runs.frame) and set(runs['config_hash']) == {'abc'}


def test_cell_is_mean_std_n_of_the_seeds(store, built):
    values = logged(store, 'table4', dict(lambda0='7.0', anneal='false'), 'val/bbox_mAP_50')
    assert len(values) == 2
    c = cell(built, 'table4', ('7', '-'), 'AP50')
    assert c['n'] == 2
    assert c['mean'] == pytest.approx(statistics.mean(values.values()))
    assert c['std'] == pytest.approx(statistics.stdev(values.values()))
    assert c['diff'] == pytest.approx(c['mean'] - 58.5)
    mean, std = statistics.mean(values.values()), statistics.stdev(values.values())
    text = f'{mean:.1f} ± {std:.1f} (n=2)'
    md = open(osp.join(built.out, 'tables', 'table4.md'), encoding='utf-8').read()
    assert '| 7 | - | 36.7 | ' in md and text in md


def test_a_seed_run_by_two_suites_counts_once_latest_wins(store, built):
    quick = logged(store, 'quick', dict(lambda0='1.0', ratios='1:3'), 'val/bbox_mAP')
    again = logged(store, 'table4', dict(lambda0='1.0'), 'val/bbox_mAP')
    values = {**quick, **again}  # table4 was written after quick
    c = cell(built, 'table4', ('1', '-'), 'AP')
    assert c['n'] == 3 and c['seeds'] == '0 1 2'
    assert c['mean'] == pytest.approx(statistics.mean(values.values()))


def test_undefined_coco_ap_is_no_value(built):
    c = cell(built, 'table2', ('Faster R-CNN', 'ResNet-50', '1x'), 'AP')
    assert c['n'] == 3
    assert built.runs.select({})['val/bbox_mAP_l'].isna().all()  # absent or pycocotools' -1


def test_ensemble_members_fill_table5_x2(store, built):
    members = logged(store, 'table5', dict(ratios='1:1,1:9', ensemble='separate'),
                     'm1/val/bbox_mAP')
    c = cell(built, 'table5', ('Faster R-CNNx2', '1:1', '1:9'), 'R2')
    assert c['n'] == 2 and c['mean'] == pytest.approx(statistics.mean(members.values()))
    verdicts = built.claims.set_index('id')['verdict']
    assert verdicts['table5_x2'] == claims.HOLDS  # PRM 31.8 vs the x2 ensemble 30.65


def test_runs_varying_a_config_key_fill_no_row(built):
    assert (built.runs.frame['config_axes'] == 'model.rpn_head.num_convs=2').sum() == 1
    assert cell(built, 'table4', ('1', '-'), 'AP')['seeds'] == '0 1 2'  # not seed 3


def test_params_not_logged_take_the_defaults(built):
    # quick logs only lambda0 and ratios; anneal defaults to true, so its λ0=7 runs are RGA.
    assert cell(built, 'table2', ('Faster R-CNN w/ RGA', 'ResNet-50', '1x'), 'AP')['n'] == 3
    assert cell(built, 'table1', ('✓', '✓'), 'R-CNN2')['n'] == 3


def test_cells_the_paper_leaves_empty_stay_empty(built):
    wide = tables.wide(built.tables['table1'], 'table1', absolute=False).set_index(['1:1', '1:9'])
    alone = wide.loc[('✓', '')]  # R-CNN2 of the 1:1-alone row: '-'
    assert list(alone[['R-CNN2 paper', 'R-CNN2 ours', 'R-CNN2 Δ ours [95% CI]']]) == ['-'] * 3


def test_effects_against_the_reference_row(store, built):
    c = cell(built, 'table4', ('7', '✓'), 'AP')
    rga = pd.Series(logged(store, 'quick', dict(lambda0='7.0', ratios='1:3'), 'val/bbox_mAP'))
    base = cell(built, 'table4', ('1', '-'), 'AP')
    assert c['effect'] == pytest.approx(c['mean'] - base['mean'])
    assert c['mean'] == pytest.approx(rga.mean())
    assert c['paper_effect'] == pytest.approx(37.3 - 36.1)
    assert c['effect_low'] < c['effect'] < c['effect_high']
    assert c['effect_method'].startswith('seeds: Welch t (3 vs 3 seeds)')
    assert pd.isna(base['effect'])  # the reference row itself
    hard = cell(built, 'table8', ('1:1', ), 'hard method')  # one hard seed: no interval
    assert not pd.isna(hard['effect']) and pd.isna(hard['effect_low'])
    md = open(osp.join(built.out, 'tables', 'table4.md'), encoding='utf-8').read()
    header = md.splitlines()[2]
    assert 'AP Δ ours [95% CI]' in header and 'AP Δ paper' in header
    assert '| AP Δ |' not in header  # tiny scale: no ours − paper
    assert f'{c["effect"]:+.1f} [{c["effect_low"]:+.1f}, {c["effect_high"]:+.1f}]' in md
    images_only = dict(c, effect_method='images only: ... (one seed per arm, ...: no verdict)')
    assert tables.effect_text(images_only).endswith('] images only')
    assert not tables.effect_text(c).endswith('images only')


def test_missing_runs_say_not_run(built):
    md = open(osp.join(built.out, 'tables', 'table7.md'), encoding='utf-8').read()
    assert md.count('not run') == 2 * len(specs.TABLES['table7'].rows)
    c = cell(built, 'table4', ('3', '✓'), 'AP')
    assert c['n'] == 0 and pd.isna(c['mean'])
    table = pd.read_csv(osp.join(built.out, 'tables', 'table2.csv'))
    assert table['n'].eq(0).sum() > 0 and table.loc[table['n'] == 0, 'mean'].isna().all()
    assert built.runs.missing_suites == [MISSING]


def test_rows_the_scale_has_no_config_for_say_so(built):
    """The tiny scale has one backbone: Table 3 (ResNet-101, ResNeXt-101) and Table 2's ResNeXt
    rows cannot run there, which the cells say rather than "not run"; the R50 2x rows can."""
    assert built.runs.scale == 'tiny'
    table3 = pd.read_csv(osp.join(built.out, 'tables', 'table3.csv'))
    assert (table3['scale'] == 'tiny').all()
    md = open(osp.join(built.out, 'tables', 'table3.md'), encoding='utf-8').read()
    assert 'not run' not in md
    assert md.count('not at tiny scale') == len(specs.TABLES['table3'].rows) * len(
        specs.TABLES['table3'].columns)
    table2 = built.tables['table2']
    resnext = table2['Backbone'].str.startswith('ResNeXt')
    assert resnext.any() and (table2.loc[resnext, 'scale'] == 'tiny').all()
    assert table2.loc[~resnext, 'scale'].eq('').all()
    assert cell(built, 'table2', ('Faster R-CNN', 'ResNet-50', '2x'), 'AP')['n'] == 0
    wide = tables.wide(table2, 'table2', built.absolute)
    r50_2x = wide[(wide['Backbone'] == 'ResNet-50') & (wide['Schedule'] == '2x')]
    assert (r50_2x['AP ours'] == 'not run').all()
    assert (wide.loc[wide['Backbone'].str.startswith('ResNeXt'), 'AP ours']
            == 'not at tiny scale').all()


def test_a_metric_no_run_logged_says_so(store, tmp_path):
    runs = Runs(['quick'], store['uri'], cache_dir=str(tmp_path))
    runs.frame = runs.frame.drop(columns=['val/h1/bbox_mAP'])
    cells = tables.build(runs, 'table1').set_index('column')
    prm = cells[(cells['1:1'] == '✓') & (cells['1:9'] == '✓')].loc['R-CNN2']
    assert prm['n'] == 0 and prm['runs'] == 3
    assert tables.ours_text(prm) == 'not logged (3 runs without val/h1/bbox_mAP)'


def test_runs_are_selected_from_the_frame_as_it_is_now(store, tmp_path):
    runs = Runs(['quick'], store['uri'], cache_dir=str(tmp_path))
    assert len(runs.select(specs.PRM)) > 0
    runs.frame = runs.frame[runs.frame['ratios'] != specs.PRM['ratios']]
    assert len(runs.select(specs.PRM)) == 0


def test_failed_run_is_reported_not_counted(built):
    (problem, ) = built.problems.itertuples()
    assert problem.status == 'FAILED' and 'out of memory' in problem.error
    md = open(osp.join(built.out, 'tables', 'table4.md'), encoding='utf-8').read()
    assert 'not run (1 failed)' in md
    assert 'lambda0=9.0;anneal=true;seed=0: FAILED' in open(
        osp.join(built.out, 'report.md'), encoding='utf-8').read()


def test_claim_verdicts(built):
    verdicts = built.claims.set_index('id')['verdict']
    # Each claim holding and failing: tests/test_claims.py. The fixture is built so that these hold, and these lack runs (Mask R-CNN and table8's
    # hard sampling: one seed, and no per-image records: no interval).
    for cid in ('fig1a', 'fig1b', 'fig2', 'fig3_pos', 'fig3_neg', 'fig5_prm', 'fig6',
                'table1_heads'):
        assert verdicts[cid] == claims.HOLDS, cid
    # annealed 31.3 ± 0.3 (3 seeds) vs constant 30.75 ± 0.21 (2 seeds): the Welch interval
    # of Δ +0.55 straddles 0
    assert verdicts['table4'] == claims.INCONCLUSIVE
    for cid in ('fig5_mask', 'table6', 'table7', 'table8'):
        assert verdicts[cid] == claims.NOT_ENOUGH, cid
    frame = built.claims.set_index('id')
    # the ensemble and its heads come from the same runs: paired over seeds
    assert frame.loc['table1_ensemble', 'method'] == 'seeds: one-sample t (3 seeds)'
    for cid in ('fig1a', 'table2_rga', 'table2_prm', 'table1_heads', 'table5_x2',
                'table1_ensemble'):
        assert frame.loc[cid, 'ci_low'] > 0 and frame.loc[cid, 'verdict'] == claims.HOLDS, cid
    assert frame.loc['table4', 'method'].startswith('seeds: Welch t (3 vs 2 seeds)')
    assert 'one seed' in frame.loc['table8', 'method']
    # the fixture's runs predate the evaluation records: the report names them
    assert built.no_records and all(v == 'no eval_records.npz' for v in built.no_records.values())
    md = open(osp.join(built.out, 'report.md'), encoding='utf-8').read()
    assert f'Written by `prm-rga report {" ".join(built.runs.suites)}`, at commit `' in md
    for suite in sorted(set(built.runs.frame['suite'])):  # the launches that trained the runs
        assert f'{suite}-tiny-launch` (run ' in md and \
            f'Started by `prm-rga suite run {suite}` at commit `c0ffee`.' in md, suite
    assert 'Runs without a per-image evaluation record' in md and \
        f'{next(iter(built.no_records))}): no eval_records.npz' in md
    csv = pd.read_csv(osp.join(built.out, 'claims.csv'))
    assert list(csv.columns[:10]) == ['id', 'source', 'claim', 'verdict', 'delta', 'ci_low',
                                      'ci_high', 'method', 'seeds', 'images']
    table4 = built.claims.set_index('id').loc['table4']
    assert 'n=3' in table4['evidence'] and 'constant: 0,1' in table4['seeds']
    # the summary, from the frame built and from claims.csv read back alike
    summary = open(osp.join(built.out, 'summary.md'), encoding='utf-8').read()
    assert summary == claims.summary(csv)
    counts = built.claims['verdict'].value_counts()
    assert summary.startswith(f"Of the paper's {len(csv)} claims: **{counts[claims.HOLDS]} holds**")
    assert summary.splitlines()[0] in md
    rows = {line.split(' | ')[0][2:]: line for line in summary.splitlines()[4:]}
    assert len(rows) == len(csv)
    t4 = rows[table4['claim']]
    assert f'**{claims.INCONCLUSIVE}**' in t4 and claims.interval_text(table4) in t4
    assert '[Table 4](tables/table4.md)' in t4 and '(3 vs 2 seeds)' in t4
    lacking = built.claims[built.claims['verdict'] == claims.NOT_ENOUGH]
    assert len(lacking) and all(  # what is missing, in place of an interval
        claims.cell(c.evidence) in rows[claims.cell(c.claim)] for c in lacking.itertuples())
    assert '[Fig. 5 Right](figures/fig5.png)' in rows[
        claims.cell(built.claims.set_index('id').loc['fig5_mask', 'claim'])]


def test_claims_that_fail_or_lack_runs_say_so(store, tmp_path):
    runs = Runs(['table8'], store['uri'], cache_dir=str(tmp_path))  # hard runs only, no soft
    verdicts = {c.id: c.verdict for c in claims.table_claims(runs)}
    assert verdicts['table8'] == claims.NOT_ENOUGH
    one_seed = claims._compare('x', 'x', 'x', {'a': pd.Series([3.0])}, {'b': pd.Series([1.0])})
    assert one_seed.verdict == claims.NOT_ENOUGH and one_seed.method == 'one seed: no interval'
    assert one_seed.delta == 2.0 and 'Δ +2.00' in one_seed.evidence
    worse = claims._compare('x', 'x', 'x', {'a': pd.Series([1.0, 1.1, 0.9])},
                            {'b': pd.Series([2.0, 2.1, 1.9])})
    assert worse.verdict == claims.CONTRADICTED and worse.ci_high < 0
    close = claims._compare('x', 'x', 'x', {'a': pd.Series([1.0, 2.0, 0.0])},
                            {'b': pd.Series([1.1, 2.1, 0.1])})
    assert close.verdict == claims.INCONCLUSIVE and close.ci_low < 0 < close.ci_high


def test_report_command(store, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / 'r')
    # the commit is read before the report writes a file: a report regenerated in a committed
    # folder (docs/reproduction) would otherwise name its own half-written files a dirty tree
    monkeypatch.setattr(notes, 'git_commit', lambda: 'dirty' if osp.exists(out) else 'clean')
    assert main(['report', 'quick', '--tracking-uri', store['uri'], '--out', out]) == 0
    printed = capsys.readouterr().out
    assert '[1/9] loading runs of quick' in printed and 'done in' in printed
    assert osp.exists(osp.join(out, 'figures', 'fig3.png'))
    with open(osp.join(out, 'report.md')) as f:
        assert 'at commit `clean`' in f.read()


def test_bad_store_is_an_input_error(tmp_path, capsys):
    uri = f'sqlite:///{tmp_path}/nothing.db'
    with pytest.raises(InputError, match='nothing.db'):
        Runs(['quick'], uri)
    assert not osp.exists(tmp_path / 'nothing.db')
    assert main(['report', 'quick', '--tracking-uri', uri, '--out', str(tmp_path)]) == 2
    assert 'no MLflow database' in capsys.readouterr().err


def test_a_suite_never_run_gives_an_empty_report(store, tmp_path):
    rep = report.build([MISSING], store['uri'], str(tmp_path), log=lambda m: None)
    assert rep.runs.missing_suites == rep.unfinished == [MISSING] and len(rep.runs.frame) == 0
    assert set(rep.claims['verdict']) == {claims.NOT_ENOUGH}
    assert all((cells['n'] == 0).all() for cells in rep.tables.values())


@pytest.fixture
def server(store, tmp_path):
    with mlflow_server(store['uri'], str(tmp_path)) as url:
        yield url


def test_a_tracking_server_gives_the_same_runs(store, server, tmp_path):
    local = Runs(['quick', 'table4'], store['uri'], cache_dir=str(tmp_path / 'a'))
    remote = Runs(['quick', 'table4'], server, cache_dir=str(tmp_path / 'b'))
    cols = ['run_id', 'status', 'lambda0', 'ratios', 'seed', 'val/bbox_mAP']
    pd.testing.assert_frame_equal(local.frame.sort_values('run_id')[cols].reset_index(drop=True),
                                  remote.frame.sort_values('run_id')[cols].reset_index(drop=True))
    keys = ['train/acc_pos/h0', 'val/bbox_mAP']
    pd.testing.assert_frame_equal(local.history(local.frame['run_id'], keys),
                                  remote.history(remote.frame['run_id'], keys))
    run_id = local.select(specs.PRM)['run_id'].iloc[0]
    assert osp.getsize(remote.artifact(run_id, 'scores.npz')) > 0
    assert remote.artifact(run_id, 'missing.npz') is None


def test_unreachable_server_is_an_input_error():
    port = free_port()
    with pytest.raises(InputError, match=f'127.0.0.1:{port}'):
        Runs(['quick'], f'http://127.0.0.1:{port}')


def test_scale_selects_runs(store, tmp_path):
    assert Runs(['quick'], store['uri'], cache_dir=str(tmp_path)).scale == 'tiny'
    paper = Runs(['quick'], store['uri'], cache_dir=str(tmp_path), scale='paper')
    assert len(paper.frame) == 0 and len(paper.select({})) == 0


def lines(ax) -> dict:
    """Legend label (up to its seed count) -> (x, y) of each line the axes drew."""
    return {line.get_label().split(' (n=')[0]: (line.get_xdata(), line.get_ydata())
            for line in ax.lines}


def assert_line(drawn, label, frame):
    """The line LABEL is the mean over seeds of FRAME (index step, a column per seed)."""
    x, y = drawn[label]
    np.testing.assert_array_equal(x, frame.index)
    np.testing.assert_allclose(y, frame.mean(axis=1), rtol=1e-12)


def test_last_quarter_gain_is_the_share_of_the_final_ap_added_after_three_quarters():
    history = pd.DataFrame(dict(
        run_id=['a'] * 4 + ['b'] * 4 + ['c'],
        step=[6, 3, 12, 9, 1, 2, 3, 5, 12],  # in any order; b's 3/4 lies between evaluations
        value=[0.3, 0.2, 0.40, 0.39, 0.1, 0.2, 0.3, 0.5, 0.4]))
    gain = measures.last_quarter_gain(history)
    assert gain['a'] == pytest.approx(0.01 / 0.40)  # epoch 9 of 12
    assert gain['b'] == pytest.approx(0.2 / 0.5)  # the evaluation at step 3 <= 0.75 * 5
    assert np.isnan(gain['c'])  # one evaluation: no curve


def test_the_report_says_which_runs_were_still_learning(store, built):
    """The fixture's runs log val AP v/3, 2v/3, v at epochs 1-3: each gained a third of its
    final AP in its last quarter, over the 5% a converged run adds."""
    runs = pd.read_csv(osp.join(built.out, 'runs.csv'))
    done = runs[runs['status'] == 'FINISHED']
    np.testing.assert_allclose(done['last_quarter_gain'], 1 / 3)
    assert runs.loc[runs['status'] != 'FINISHED', 'last_quarter_gain'].isna().all()
    md = open(osp.join(built.out, 'report.md'), encoding='utf-8').read()
    assert (f'Of {len(done)} finished runs with a validation curve, **{len(done)}** gained more '
            'than 5% of their final AP in the last quarter') in md
    assert md.count('\n- ') >= len(done) and '+33.3%' in md


def test_a_band_stays_within_what_its_quantity_can_take():
    """Three seeds of an accuracy near 1 (and near 0): the 95% t interval runs past [0, 1], the
    band drawn stops there; the line is the mean as it is."""
    frame = pd.DataFrame({0: [0.99, 0.0], 1: [1.0, 0.05], 2: [0.7, 0.0]}, index=[10, 20])
    half = 4.303 * frame.std(axis=1) / np.sqrt(3)  # t(0.975, 2 dof)
    assert (frame.mean(axis=1) + half)[10] > 1 and (frame.mean(axis=1) - half)[20] < 0
    fig, ax = plt.subplots()
    figures._band(ax, frame, 'acc', top=1)
    y = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert y.max() == 1.0 and y.min() == 0.0
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), frame.mean(axis=1))
    plt.close(fig)


def test_figures_plot_the_measured_numbers(built):
    """What each figure drew, read back from the matplotlib figure before saving, is what
    analysis.measures computes from the runs."""
    runs = built.runs
    fig = figures.fig1a(runs)
    curve = measures.curves(runs, specs.BASELINE, ['train/num_pos/h0'])['train/num_pos/h0']
    assert_line(lines(fig.axes[0]), figures.BASE, measures.smooth(curve))

    ax = figures.fig1b(runs).axes[0]
    medians = measures.rpn_positives(runs).groupby('num_gt')['num_pos'].median()
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(g) for g in medians.index]
    assert [line.get_ydata()[0] for line in ax.lines[5::6]] == list(medians)  # 6 lines a box

    fig = figures.fig2(runs)
    for ax, (subset, points) in zip(fig.axes, measures.fig2_points(runs).items()):
        single = points.drop('PRM')
        x, y = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
        have = np.flatnonzero(single['n'] > 0)
        np.testing.assert_array_equal(x, have)
        np.testing.assert_allclose(np.asarray(y, float), single['mean'].iloc[have].astype(float))
        prm = [line for line in ax.lines if line.get_label().startswith('Faster R-CNN w/ PRM')]
        assert prm[0].get_ydata()[0] == points.loc['PRM', 'mean'], subset

    fig = figures.fig3(runs)
    keys = ['train/acc_pos/h0', 'train/acc_neg/h0', 'val/bbox_mAP']
    for label, selector in ((figures.BASE, specs.BASELINE), (figures.RGA_LABEL, specs.RGA)):
        data = measures.curves(runs, selector, keys)
        for ax, key in zip(fig.axes, keys):
            frame = data[key] * 100 if key.startswith('val/') else measures.smooth(data[key])
            assert_line(lines(ax), label, frame)

    ax = figures.fig5(runs).axes[0]
    a, b, total = (measures.smooth(v) for v in measures.curves(
        runs, specs.PRM, specs.FIG5_KEYS['PRM']).values())
    drawn = lines(ax)
    for label, frame in (('‖g R-CNN1‖', a), ('‖g R-CNN2‖', b),
                         ('‖g R-CNN1 + g R-CNN2‖', total), ('‖g R-CNN1‖ + ‖g R-CNN2‖', a + b)):
        assert_line(drawn, label, frame)

    fig = figures.fig6(runs)
    scores = measures.head_scores(runs)
    bins = np.linspace(0, 1, 41)
    heights = [p.get_height() for p in fig.axes[0].patches]
    expected = [np.histogram(scores[h], bins)[0] for h in ('h0', 'h1')]
    np.testing.assert_array_equal(heights, np.concatenate(expected))
    diff = [p.get_height() for p in fig.axes[1].patches]
    np.testing.assert_array_equal(diff, np.histogram((scores['h0'] - scores['h1']).abs(),
                                                     bins)[0])
    plt.close('all')
