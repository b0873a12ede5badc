"""Reuse by content: what `config_hash` covers, which finished runs a launch reuses (none that
failed, none with `--no-reuse`), the reuse records in `suite status`, `--resume` and the report,
on a SQLite store and an `mlflow server`. Runs are written with the MLflow client; the launch
with training is in test_launcher.py."""
import argparse

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mmengine.config import Config

from analysis.runs import Runs
from experiments import reuse, suites
from experiments.launcher import child_runs, plan_launch, print_status, run_suite
from experiments.suites import Suite, Trial, config_hash
from mlflow_store import mlflow_server
from prm_rga_errors import InputError
from test_launcher import launch_args, tiny_config


def test_config_hash_covers_config_seed_data_version_and_code(monkeypatch):
    from prm_rga import synth_backbone
    from prm_rga.datasets import synth
    cfg, elsewhere = (tiny_config(root, randomness=dict(seed=0))
                      for root in ('/data/a/synth', '/elsewhere/synth'))
    base = config_hash((cfg, ))
    assert config_hash(suites.reseed((cfg, ), 0)) == base
    assert config_hash(suites.reseed((cfg, ), 1)) != base  # the seed
    assert config_hash((cfg, ), processes=2) != base  # data-parallel on 2 GPUs
    changed = cfg.copy()
    changed.merge_from_dict({'model.rpn_head.loss_bbox.loss_weight': 2.0})
    assert config_hash((changed, )) != base  # one config key
    # the same synthetic set and backbone in another folder (another clone): the same trial
    assert config_hash((elsewhere, )) == base
    monkeypatch.setattr(synth, 'VERSION', synth.VERSION + 1)
    assert config_hash((cfg, )) != base  # the synthetic set's version
    monkeypatch.undo()
    monkeypatch.setattr(synth_backbone, 'VERSION', synth_backbone.VERSION + 1)
    assert config_hash((cfg, )) != base
    monkeypatch.undo()
    assert set(suites.code_version()) == {'prm_rga', 'torch', 'mmcv', 'mmdet', 'mmengine'}
    monkeypatch.setattr(suites, 'code_version', lambda: {'prm_rga': 'another'})
    assert config_hash((cfg, )) != base  # the code


def fake_trial(name: str, seed: int = 0) -> Trial:
    """A trial that is never trained: what matters here is its config_hash."""
    configs = (Config(dict(randomness=dict(seed=seed), trial=name.split(';')[0])), )
    return Trial(name, {'seed': str(seed), 'config_hash': config_hash(configs)}, configs,
                 {'CPU': 1, 'GPU': 0})


def write_launch(client, suite: str, statuses: dict) -> dict:
    """A launch of SUITE whose trials (name -> status) ended as given: trial name -> run id."""
    experiment = client.create_experiment(suite)
    parent = client.create_run(experiment, run_name=f'{suite}-tiny-1', tags={
        'suite': suite, 'scale': 'tiny', 'tune_experiment': f'/nowhere/{suite}-tiny-1'}).info
    ids = {}
    for name, status in statuses.items():
        t = fake_trial(name)
        ids[name] = client.create_run(experiment, run_name=name, tags={
            'mlflow.parentRunId': parent.run_id, 'suite': suite, 'trial': name,
            'scale': 'tiny'}).info.run_id
        client.log_batch(ids[name], metrics=[Metric('val/bbox_mAP', 0.4, 0, 1)],
                         params=[Param(k, v) for k, v in t.params.items()])
        client.set_terminated(ids[name], status)
    client.set_terminated(parent.run_id, 'FAILED')
    return ids


def first_launch(tmp_path):
    """A SQLite store with a finished launch of suite `first`: trial a FINISHED, b FAILED,
    c KILLED. Its URI and the trials' run ids."""
    db = f'sqlite:///{tmp_path}/mlruns/mlflow.db'
    (tmp_path / 'mlruns').mkdir()
    return db, write_launch(MlflowClient(db), 'first', {
        'a;seed=0': 'FINISHED', 'b;seed=0': 'FAILED', 'c;seed=0': 'KILLED'})


@pytest.fixture(params=['sqlite', 'http'])
def store(request, tmp_path):
    """`first_launch` on the SQLite file, or through an `mlflow server` on it."""
    db, ids = first_launch(tmp_path)
    if request.param == 'sqlite':
        yield db, ids
        return
    with mlflow_server(db, str(tmp_path)) as url:
        yield url, ids


SECOND = Suite('second', '<tests>', 'shares trial a with suite first', (), {})


def test_a_finished_run_is_reused_failed_and_killed_ones_are_not(store, tmp_path, capsys):
    uri, first = store
    client = MlflowClient(uri)
    trials = [fake_trial(n) for n in ('a;seed=0', 'b;seed=0', 'c;seed=0', 'd;seed=0')]
    trials.append(fake_trial('a;seed=1', seed=1))  # another seed: another trial
    plan = plan_launch(client, uri, SECOND, trials, launch_args(tmp_path, tracking_uri=uri))
    assert {n: r.info.run_id for n, r in plan.reused.items()} == {'a;seed=0': first['a;seed=0']}
    assert [t.name for t in plan.to_train(trials)] == ['b;seed=0', 'c;seed=0', 'd;seed=0',
                                                       'a;seed=1']
    no_reuse = launch_args(tmp_path, tracking_uri=uri, no_reuse=True)
    assert plan_launch(client, uri, SECOND, trials, no_reuse).reused == {}

    shared = trials[:1]
    assert run_suite(SECOND, shared, launch_args(tmp_path, tracking_uri=uri, dry_run=True)) == 0
    out = capsys.readouterr().out
    assert f'a;seed=0  1 CPU  reused: run {first["a;seed=0"]} of suite first' in out, out
    assert run_suite(SECOND, shared, launch_args(tmp_path, tracking_uri=uri)) == 0
    out = capsys.readouterr().out
    assert ('1 of 1 trials finished, 0 failed' in out
            and '1 reused, 0 handed to Ray Tune: nothing was trained' in out), out
    second = client.get_experiment_by_name('second').experiment_id
    (parent, ) = [r for r in client.search_runs([second]) if 'trial' not in r.data.tags]
    (record, ) = child_runs(client, second, parent.info.run_id).values()
    assert record.info.status == 'FINISHED' and parent.info.status == 'FINISHED'
    assert record.data.tags[reuse.REUSED_FROM] == first['a;seed=0']
    assert record.data.params['config_hash'] == trials[0].params['config_hash']
    assert print_status('second', argparse.Namespace(tracking_uri=uri, scale=None)) == 0
    out = capsys.readouterr().out
    assert f'a;seed=0  FINISHED        0.4000  {first["a;seed=0"]}  reused from suite first' \
        in out, out

    # --resume of a launch with reused trials: nothing trains, the record stays the only run
    assert run_suite(SECOND, shared, launch_args(tmp_path, tracking_uri=uri, resume=True)) == 0
    out = capsys.readouterr().out
    assert '1 reused, 0 handed to Ray Tune: nothing was trained' in out, out
    assert list(child_runs(client, second, parent.info.run_id).values())[0].info.run_id == \
        record.info.run_id
    assert len(client.search_runs([second])) == 2

    # a seed added since (`make reproduce` after `make demo`): Ray Tune would restore only the
    # launch's own trials, so --resume refuses, and a new launch reuses the finished ones
    more = shared + [fake_trial('a;seed=1', seed=1)]
    with pytest.raises(InputError, match=rf'--resume: launch {parent.info.run_name} was made '
                       'for other trials than the 2 of the suite as it is now'):
        run_suite(SECOND, more, launch_args(tmp_path, tracking_uri=uri, resume=True))


def test_the_report_counts_a_run_once_however_many_suites_reuse_it(tmp_path):
    uri, first = first_launch(tmp_path)
    shared = [fake_trial('a;seed=0')]
    for name in ('second', 'third'):
        assert run_suite(Suite(name, '<tests>', '', (), {}), shared,
                         launch_args(tmp_path, tracking_uri=uri)) == 0
    frame = Runs(['first', 'second', 'third'], uri, cache_dir=str(tmp_path / 'cache')).frame
    assert sorted(frame['run_id']) == sorted(first.values())
    assert frame.set_index('run_id').loc[first['a;seed=0'], 'suite'] == 'first'
    # a suite made only of reused trials holds their finished runs: it was run
    write_launch(MlflowClient(uri), 'failed', {'b;seed=0': 'FAILED'})
    assert Runs(['third'], uri, cache_dir=str(tmp_path / 'cache')).unfinished() == []
    runs = Runs(['first', 'second', 'third', 'failed', 'never'], uri,
                cache_dir=str(tmp_path / 'cache'))
    assert runs.unfinished() == ['failed', 'never']
