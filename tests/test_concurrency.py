"""Commands started together on one store, as lab members sharing a machine start them: the
embedded SQLite store created (or an old one upgraded) by one process while the others wait, and
three `prm-rga suite run` processes at once on a new directory, two of them of the same suite,
each with its own launch, trial runs and metrics."""
import multiprocessing as mp
import os
import os.path as osp
import subprocess
import sys

import pytest
import sqlalchemy
from mlflow import MlflowClient
from mlflow.store.db import utils as db

from conftest import tiny_scale_yaml
from experiments import tracking

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def at_once(count: int, target, *args) -> None:
    """COUNT processes forked together, each calling TARGET(*ARGS); all must succeed."""
    procs = [mp.get_context('fork').Process(target=target, args=args) for _ in range(count)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    assert [proc.exitcode for proc in procs] == [0] * count


def schema(path) -> str:
    engine = sqlalchemy.create_engine(f'sqlite:///{path}')
    try:
        return db._get_schema_version(engine)
    finally:
        engine.dispose()


def test_a_new_store_is_created_once_and_an_old_one_upgraded_once(tmp_path, capfd):
    new = tmp_path / 'new' / 'mlflow.db'
    at_once(6, tracking.check_tracking_uri, f'sqlite:///{new}')  # what every command does first
    assert schema(new) == db._get_latest_schema_revision()
    assert MlflowClient(f'sqlite:///{new}').search_experiments()  # MLflow opens it as its own
    # a store of MLflow 1.0's schema, before its migrations
    from mlflow.store.tracking.dbmodels.initial_models import Base
    old = tmp_path / 'old' / 'mlflow.db'
    old.parent.mkdir()
    engine = sqlalchemy.create_engine(f'sqlite:///{old}')
    Base.metadata.create_all(engine)
    engine.dispose()
    capfd.readouterr()
    at_once(4, tracking.check_tracking_uri, f'sqlite:///{old}')
    out = capfd.readouterr().out
    assert out.count('upgrading its schema') == 1, out
    assert f'MLflow store {old}: upgrading its schema from base to ' in out, out
    assert schema(old) == db._get_latest_schema_revision()
    assert schema(f'{old}.base.bak') is None  # the store as it was


SUITE = 'description: {name}, one tiny trial\nvariants:\n  - {{}}\n'


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    from prm_rga.datasets import make_synth
    root = tmp_path_factory.mktemp('synth')
    make_synth(root, seed=0, num_train=16, num_val=8, image_size=128)
    return str(root)


def test_three_launches_at_once_on_a_new_directory(tmp_path, synth, monkeypatch, capsys):
    """`alpha` twice and `beta` once, started together where no store exists yet: each launch
    its parent run with its one trial run, every metric step once; `suite status` and
    `--resume` take the later launch of `alpha`; the report reads each trial run once."""
    from analysis.runs import Runs
    from prm_rga_cli import main
    for name in ('alpha', 'beta'):
        (tmp_path / f'{name}.yaml').write_text(SUITE.format(name=name) + tiny_scale_yaml())
    env = dict(os.environ, PRM_RGA_SYNTH=synth,
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    # --calibrate-iters 0: no estimate is checked here, and each launch would time 6
    # iterations of its own and a fresh process's imports first (test_estimate.py checks that)
    procs = [subprocess.Popen([sys.executable, '-m', 'prm_rga_cli', 'suite', 'run',
                               f'{name}.yaml', '--flush-interval', '1', '--calibrate-iters', '0'],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for name in ('alpha', 'beta', 'alpha')]
    outs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], '\n\n'.join(o[-3000:] for o in outs)
    uri = f'sqlite:///{tmp_path}/mlruns/mlflow.db'
    client = MlflowClient(uri)
    launches, trial_runs = {}, []
    for name in ('alpha', 'beta'):
        runs = tracking.search_runs(
            client, [client.get_experiment_by_name(name).experiment_id])
        launches[name] = [r for r in runs if 'mlflow.parentRunId' not in r.data.tags]
        kids = [r for r in runs if 'mlflow.parentRunId' in r.data.tags]
        assert sorted(r.data.tags['mlflow.parentRunId'] for r in kids) == sorted(
            r.info.run_id for r in launches[name])  # one trial run a launch
        for run in launches[name] + kids:
            assert run.info.status == 'FINISHED', run.data.tags.get('error')
        for run in kids:  # 2 iterations, validated once, the cost rates once at the end
            assert {'train/loss', 'val/bbox_mAP', 'cost/step_s'} <= set(run.data.metrics)
            for key in run.data.metrics:
                steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
                assert steps == {'train': [1, 2], 'cost': [0]}.get(key.split('/')[0], [1]), key
        trial_runs += kids
    assert [len(launches['alpha']), len(launches['beta'])] == [2, 1]

    earlier, later = sorted(launches['alpha'], key=lambda r: r.info.start_time)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('PRM_RGA_SYNTH', synth)
    assert main(['suite', 'status', 'alpha.yaml']) == 0
    assert f'launch {later.info.run_name} [FINISHED]: 1 trial runs' in capsys.readouterr().out
    assert main(['suite', 'run', 'alpha.yaml', '--resume']) == 0
    assert '1 of 1 trials finished' in capsys.readouterr().out
    assert 'Resumed by' in client.get_run(later.info.run_id).data.tags['mlflow.note.content']
    assert client.get_run(earlier.info.run_id).data.tags == earlier.data.tags
    assert len(tracking.search_runs(client, [later.info.experiment_id])) == 4  # no new run

    frame = Runs(['alpha', 'beta'], uri).frame
    assert sorted(frame['run_id']) == sorted(r.info.run_id for r in trial_runs)


def test_a_suite_new_to_the_store_gets_one_experiment(tmp_path, monkeypatch):
    """Two launches of a new suite: the one that finds no experiment, then loses the race to
    create it, takes the other's."""
    uri = f'sqlite:///{tmp_path}/mlflow.db'
    tracking.check_tracking_uri(uri)
    client = MlflowClient(uri)
    made, real, looks = client.create_experiment('unit'), client.get_experiment_by_name, []

    def before_the_other_made_it(name):
        looks.append(name)
        return None if len(looks) == 1 else real(name)

    monkeypatch.setattr(client, 'get_experiment_by_name', before_the_other_made_it)
    assert tracking.get_or_create_experiment(client, 'unit', uri) == made
