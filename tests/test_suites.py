"""Suite files: every shipped suite expands at its scales into buildable trials, params map to
the configs a researcher would write by hand, and bad suite files are refused before anything
runs, with the file and field named."""
import functools
import os
import os.path as osp
import subprocess

import pytest

from analysis import specs
from analysis.runs import normalize
from conftest import assert_mmdet1_training, config
from experiments.suites import (SCALES, base_config, build_config, config_hash,
                                ensemble_config, expand, list_suites, load_suite)
from mmdet.registry import MODELS
from prm_rga.errors import InputError

PAPER_NAMES = ['quick', 'table1', 'table2', 'table3', 'table4', 'table5', 'table6', 'table7',
               'table8', 'fig1', 'fig2', 'fig3', 'fig5', 'fig6']


def params(**kw):
    base = dict(detector='faster_rcnn', backbone='r50', schedule='1x', dataset='coco',
                ratios='1:3', sampling='soft', lambda0='1', anneal='true', ensemble='none',
                seed='0')
    return {**base, **kw}


def test_every_paper_experiment_has_a_suite():
    assert sorted(list_suites()) == sorted(PAPER_NAMES)


def test_make_reproduce_runs_every_suite_with_a_tiny_scale():
    """`make reproduce` is the whole paper on the embedded default: a suite added with a tiny
    scale cannot be left out of it. The list as make reads it (REPRO_SUITES unset)."""
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k not in ('REPRO_SUITES', 'MAKEFLAGS')}
    listed = subprocess.run(
        ['make', '-s', '-C', root, '--eval', 'repro-suites: ; @echo $(REPRO_SUITES)',
         'repro-suites'], env=env, capture_output=True, text=True, check=True).stdout.split()
    tiny = [name for name in list_suites() if 'tiny' in scales_of(name)]
    assert sorted(listed) == sorted(tiny) and len(set(listed)) == len(listed), listed


@functools.lru_cache(maxsize=None)
def trials_of(name, scale):
    """The suite's trials at SCALE, expanded once for the tests that read them."""
    return expand(load_suite(name), scale)


def scales_of(name):
    return [s for s in SCALES if s in load_suite(name).spec['scales']]


@pytest.mark.parametrize('name', PAPER_NAMES)
def test_suite_expands_at_its_scales(name):
    suite = load_suite(name)
    assert suite.analysis and suite.description
    scales = scales_of(name)
    assert 'paper' in scales and (name == 'table3' or 'tiny' in scales)
    for scale in scales:
        trials = trials_of(name, scale)
        assert trials and len({t.name for t in trials}) == len(trials)
        for t in trials:
            assert {'detector', 'ratios', 'lambda0', 'seed', 'config_hash'} <= set(t.params)
            assert all(isinstance(v, str) for v in t.params.values())
            assert t.resources['CPU'] >= 1
            assert len(t.configs) == (2 if t.params['ensemble'] == 'separate' else 1)
            for cfg in t.configs:  # every variant trains by mmdet 1.x's rules (fidelity.md)
                assert_mmdet1_training(cfg, f'{name} {scale}: {t.name}',
                                       proposals=2000 if scale == 'paper' else 300)


def selectors(item):
    """(what, selector) of each run set table or figure ITEM reads: a cell's row and column
    params, or a figure's curve or panel."""
    if item in specs.FIGURES:
        return list(specs.FIGURES[item].items())
    spec = specs.TABLES[item]
    return [(f'{label} {column}', {**row.params, **col.params})
            for label, row in spec.rows.items() for column, col in spec.columns.items()
            if row.metrics is None or column in row.metrics]


@pytest.mark.parametrize('name', PAPER_NAMES)
def test_suite_fills_every_row_it_names(name):
    """Every cell of the tables and every curve of the figures in the suite's `analysis:` list
    selects one of its trials at each scale (rows of a backbone the tiny scale lacks apart), so
    that no row reads "not run" after the suite ran."""
    for scale in scales_of(name):
        trials = [normalize(t.params) for t in trials_of(name, scale)
                  if not any('.' in k for k in t.params)]  # config-key axes fill no row
        for item in load_suite(name).analysis:
            for what, selector in selectors(item):
                want = {k: v for k, v in normalize(selector).items() if k != 'seed'}
                try:
                    base_config(want, scale)
                except InputError:
                    continue  # the scale has no config for it (tiny: one backbone)
                assert any(all(t[k] == v for k, v in want.items()) for t in trials), (
                    f'{name} {scale}: {item} {what}: no trial with {want}')


def test_quick_suite_is_baseline_rga_prm_and_both():
    trials = trials_of('quick', 'tiny')
    got = {(t.params['ratios'], t.params['lambda0']) for t in trials}
    assert len(trials) == 8 and got == {('1:3', '1'), ('1:3', '7'), ('1:1,1:9', '1'), ('1:1,1:9', '7')}
    assert trials[2].name == 'ratios=1:3;lambda0=7;seed=0'
    assert [t.params['seed'] for t in trials] == ['0', '1'] * 4
    assert all(t.configs[0].train_cfg.max_epochs == 12 for t in trials)  # the converged 1x
    assert len({t.params['config_hash'] for t in trials}) == 8
    cfg = trials[0].configs[0]  # data where the suite was launched, wherever the trial runs
    paths = [cfg.synth_data.out_dir, cfg.train_dataloader.dataset.data_root,
             cfg.val_dataloader.dataset.data_root, cfg.val_evaluator.ann_file,
             cfg.synth_backbone.out_dir, cfg.model.backbone.init_cfg.checkpoint]
    assert all(osp.isabs(p) for p in paths) and paths[1] == osp.abspath('data/synth') + '/'
    assert paths[5] == paths[4] + 'backbone.pth'  # the backbone the config pretrains
    assert cfg.train_dataloader.dataset.ann_file == 'annotations/instances_train.json'


def test_seeds_multiply_trials():
    suite = load_suite('table4')
    assert len(expand(suite, 'tiny', seeds=[0, 1, 2])) == 3 * len(expand(suite, 'tiny', [0]))


@pytest.mark.parametrize('hand,setting', [
    ('tiny/faster-rcnn_tiny_rga-prm_synth.py', dict(ratios='1:1,1:9', lambda0='7')),
    ('tiny/faster-rcnn_tiny_prm_synth.py', dict(ratios='1:1,1:9')),
    ('tiny/faster-rcnn_tiny_rga_synth.py', dict(lambda0='7')),
    ('tiny/cascade-rcnn_tiny_rga-prm_synth.py',
     dict(detector='cascade_rcnn', ratios='1:1,1:9', lambda0='7')),
    ('faster_rcnn/faster-rcnn_r50_fpn_rga-prm_2x_coco.py',
     dict(ratios='1:1,1:9', lambda0='7', schedule='2x')),
    ('faster_rcnn/faster-rcnn_x101-32x4d_fpn_rga_1x_coco.py',
     dict(backbone='x101-32x4d', lambda0='7')),
])
def test_params_give_the_hand_written_config(hand, setting):
    scale = 'tiny' if hand.startswith('tiny') else 'paper'
    (cfg, ) = build_config(params(**setting), scale)
    ref = config(hand)
    assert cfg.model == ref.model
    assert cfg.optim_wrapper == ref.optim_wrapper
    assert cfg.train_cfg == ref.train_cfg
    def unscoped(schedulers):  # mmdet base configs tag their entries with _scope_
        return [{k: v for k, v in s.items() if k != '_scope_'} for s in schedulers]
    assert unscoped(cfg.param_scheduler) == unscoped(ref.param_scheduler)


def test_hard_sampling_constant_lambda_and_seed():
    (cfg, ) = build_config(params(sampling='hard', ratios='1:1,1:5', lambda0='5', anneal='false',
                                  seed='3'), 'tiny')
    assert cfg.model.roi_head.type == 'ParallelRoIHead'
    assert [r.sampler.type for r in cfg.model.train_cfg.rcnn] == ['HardRatioSampler'] * 2
    assert [r.sampler.pos_fraction for r in cfg.model.train_cfg.rcnn] == [1 / 2, 1 / 6]
    assert cfg.optim_wrapper.type == 'RGAOptimWrapper'
    assert (cfg.optim_wrapper.lambda0, cfg.optim_wrapper.anneal) == (5.0, False)
    assert cfg.randomness.seed == 3
    assert MODELS.build(cfg.model).roi_head.bbox_head.reg_index == 0


def test_separate_detectors_and_their_ensemble(tmp_path):
    cfgs = build_config(params(ratios='1:1,1:9', ensemble='separate'), 'tiny')
    assert [c.model.train_cfg.rcnn.sampler.pos_fraction for c in cfgs] == [1 / 2, 1 / 10]
    assert all(c.model.roi_head.type == 'StandardRoIHead' for c in cfgs)
    assert [c.randomness.seed for c in cfgs] == [0, 1000]  # trained apart: other init, order
    ens = ensemble_config(cfgs, checkpoints=[None, None])
    assert ens.model.reg_model == 0 and ens.model.type == 'ProposalEnsemble'
    ens.model.pop('checkpoints')
    assert len(MODELS.build(ens.model).detectors) == 2


def test_config_key_axes_and_cfg_options(tmp_path):
    (tmp_path / 's.yaml').write_text(
        "params: {ratios: '1:3'}\n"
        "grid: {model.train_cfg.rcnn.sampler.num: [64, 256]}\n"
        "scales: {tiny: {resources: {CPU: 1}, cfg_options: {train_cfg.max_epochs: 2}}}\n")
    trials = expand(load_suite(str(tmp_path / 's.yaml')), 'tiny')
    assert [t.name for t in trials] == ['model.train_cfg.rcnn.sampler.num=64;seed=0',
                                        'model.train_cfg.rcnn.sampler.num=256;seed=0']
    assert [t.configs[0].model.train_cfg.rcnn.sampler.num for t in trials] == [64, 256]
    assert trials[0].configs[0].train_cfg.max_epochs == 2


def test_config_key_axis_in_some_variants_only(tmp_path):
    (tmp_path / 's.yaml').write_text(
        "variants: [{model.rpn_head.loss_bbox.loss_weight: 2.0}, {lambda0: 7}]\n"
        "scales: {tiny: {resources: {CPU: 1}}}\n")
    trials = expand(load_suite(str(tmp_path / 's.yaml')), 'tiny')
    assert [t.name for t in trials] == ['lambda0=1;model.rpn_head.loss_bbox.loss_weight=2.0;seed=0',
                                        'lambda0=7;seed=0']
    assert trials[0].configs[0].model.rpn_head.loss_bbox.loss_weight == 2.0


def test_unknown_suite_name():
    with pytest.raises(InputError, match="unknown suite 'tabel4'.*table4"):
        load_suite('tabel4')


@pytest.mark.parametrize('text,match', [
    ('scales: {tiny: {resources: {CPU: 1}}\n', 'malformed YAML'),
    ('- a\n- b\n', 'a YAML mapping'),
    ('grid: {lamda0: [1, 7]}\nscales: {tiny: {resources: {CPU: 1}}}\n', "unknown axis 'lamda0'"),
    ('grid: {ratios: [1:3]}\nscales: {tiny: {resources: {CPU: 1}}}\n', 'quote them'),
    ('grid: {lambda0: [0.5]}\nscales: {tiny: {resources: {CPU: 1}}}\n', 'lambda0 must be'),
    ('params: {sampling: medium}\nscales: {tiny: {resources: {CPU: 1}}}\n', "sampling='medium'"),
    ('scales: {tiny: {resources: {CPU: 0}}}\n', r'resources.CPU must be an integer >= 1'),
    ('scales: {tiny: {resources: {CPU: 1, TPU: 2}}}\n', 'resources must be a mapping'),
    ('scales: {huge: {resources: {CPU: 1}}}\n', 'scales.huge: unknown scale'),
    ('scales: {tiny: {}}\n', 'needs resources'),
    ('seeds: [a]\nscales: {tiny: {resources: {CPU: 1}}}\n', 'seeds must be integers'),
    ('gird: {}\nscales: {tiny: {resources: {CPU: 1}}}\n', r"unknown keys \['gird'\]"),
    ('scales: {tiny: {resources: {CPU: 1}, log_checkpoint: false}}\n',
     'scales.tiny.log_checkpoint: true or false, at the paper scale'),
    ('scales: {paper: {resources: {CPU: 1}, log_checkpoint: yes please}}\n',
     'scales.paper.log_checkpoint: true or false'),
])
def test_bad_suite_file_named(tmp_path, text, match):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        load_suite(str(path))
    assert str(path) in str(err.value)


def test_checkpoints_logged_at_tiny_scale_and_where_a_paper_suite_says(tmp_path):
    from experiments.suites import logs_checkpoint
    path = tmp_path / 'lab.yaml'
    path.write_text('scales: {tiny: {resources: {CPU: 1}}, paper: {resources: {CPU: 1}, '
                    'log_checkpoint: true}}\n')
    assert logs_checkpoint(load_suite(str(path)), 'paper')
    quick = load_suite('quick')
    assert logs_checkpoint(quick, 'tiny') and not logs_checkpoint(quick, 'paper')


@pytest.mark.parametrize('text,match', [
    ('grid: {model.roi_head.no_such_key: [1]}\n', "'model.roi_head.no_such_key' names no key"),
    ('params: {backbone: r101}\n', 'has no tiny config'),
    ('grid: {randomness.seed: [1, 2]}\n', "randomness.seed: the seed is set by the suite's seeds"),
])
def test_bad_axis_refused_at_expand(tmp_path, text, match):
    path = tmp_path / 'bad.yaml'
    path.write_text(text + 'scales: {tiny: {resources: {CPU: 1}}}\n')
    suite = load_suite(str(path))
    with pytest.raises(InputError, match=match) as err:
        expand(suite, 'tiny')
    assert str(path) in str(err.value)
    with pytest.raises(InputError, match="no 'paper' scale"):
        expand(suite, 'paper')


def test_table5_x2_members_have_their_own_seeds_recorded_as_params():
    trials = [t for t in trials_of('table5', 'tiny') if len(t.configs) > 1]
    assert [t.params['seed'] for t in trials] == ['0', '1']
    for trial in trials:
        seeds = [c.randomness.seed for c in trial.configs]
        assert len(set(seeds)) == 2 and seeds[0] == int(trial.params['seed'])
        assert trial.params['member_seeds'] == ','.join(map(str, seeds))
    single = [t for t in trials_of('table5', 'tiny') if len(t.configs) == 1]
    assert all('member_seeds' not in t.params for t in single)


def test_seeds_derived_from_one_build_are_the_configs_their_own_builds_give(tmp_path):
    (tmp_path / 's.yaml').write_text(
        "variants: [{}, {ratios: '1:1,1:9', ensemble: separate}]\n"
        "grid: {model.rpn_head.loss_bbox.loss_weight: [1.0, 2.0]}\n"
        "seeds: [0, 1, 2]\n"
        "scales: {tiny: {resources: {CPU: 1}, cfg_options: {train_cfg.max_epochs: 2}}}\n")
    trials = expand(load_suite(str(tmp_path / 's.yaml')), 'tiny')
    assert len(trials) == 12
    for t in trials:
        own = build_config(t.params, 'tiny', {'train_cfg.max_epochs': 2})
        assert [c.to_dict() for c in t.configs] == [c.to_dict() for c in own], t.name
        assert t.params['config_hash'] == config_hash(own)
    first, second = trials[0].configs[0], trials[1].configs[0]
    assert (first.randomness.seed, second.randomness.seed) == (0, 1)
    assert first.model is second.model  # one build per setting, not per seed


def test_one_bad_value_among_2000_trials_is_named_before_anything_is_made(tmp_path, monkeypatch,
                                                                        capsys):
    """A generated grid of 100 settings x 20 seeds whose last setting asks for a backbone the
    tiny scale lacks: `suite run` refuses it naming the trial and the field, before it makes a
    data set, a store or a Ray."""
    import yaml

    from prm_rga_cli import main
    points = [{'lambda0': lam, 'ratios': f'1:{k}'} for lam in range(1, 11) for k in range(1, 11)]
    points[-1]['backbone'] = 'r101'
    (tmp_path / 'big.yaml').write_text(yaml.safe_dump({
        'grid': {'point': points}, 'seeds': list(range(20)),
        'scales': {'tiny': {'resources': {'CPU': 1}}}}))
    monkeypatch.chdir(tmp_path)
    assert main(['suite', 'run', 'big.yaml']) == 2
    assert (f'prm-rga: error: big.yaml: trial backbone=r101;ratios=1:10;lambda0=10;seed=0: '
            'backbone=r101 has no tiny config') in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['big.yaml']


def test_check_reproduction_wants_each_trial_finished_once(tmp_path, capsys):
    """tools/check_reproduction.py (the last step of `make reproduce`) on a runs.csv written by
    hand from quick's trials: all there passes; a trial only FAILED, or one trained twice, fails
    and is named."""
    import importlib.util

    import pandas as pd
    spec = importlib.util.spec_from_file_location(
        'check_reproduction',
        osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools', 'check_reproduction.py'))
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    trials = trials_of('quick', 'tiny')
    rows = [dict(suite='quick', trial=t.name, status='FINISHED',
                 config_hash=t.params['config_hash']) for t in trials]

    def run(rows):
        pd.DataFrame(rows).to_csv(tmp_path / 'runs.csv', index=False)
        code = check.main([str(tmp_path), '--suites', 'quick', '--seeds', '0', '1'])
        return code, capsys.readouterr().out

    code, out = run(rows)
    assert code == 0 and ('quick     8 of 8 trials have a finished run\n'
                          f'8 distinct configs in 8 trials; 8 runs in {tmp_path}/runs.csv\n') in out
    failed = [dict(r, status='FAILED') if i == 3 else r for i, r in enumerate(rows)]
    code, out = run(failed)
    assert code == 1 and f'missing: {trials[3].name} (config {trials[3].params["config_hash"]})' in out
    code, out = run(rows + rows[:1])
    assert code == 1 and f'trained more than once: configs {trials[0].params["config_hash"]}' in out
