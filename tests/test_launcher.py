"""`run_suite` on a private local Ray with a SQLite MLflow store: tiny trials (2 iterations on 16
synthetic images) end to end, a diverging trial, a driver killed mid-suite and resumed, and bad
input refused before any trial starts."""
import argparse
import filecmp
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from mlflow import MlflowClient
from mmengine.config import Config

from analysis.runs import Runs
from conftest import BACKBONE_OPTIONS, CONFIGS, tiny_scale_yaml
from experiments import estimate, launcher, tracking

from experiments.launcher import child_runs, print_status, run_suite
from experiments.suites import Suite, Trial, config_hash
from prm_rga.errors import InputError

TESTS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TESTS)


def tiny_config(synth: str, name: str = 'faster-rcnn_tiny_synth.py', **options) -> Config:
    """A tiny config on the 16-image set: one epoch of 2 iterations, validated on 8 images."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny', name))
    ann = f'{synth}/annotations/instances_val.json'
    cfg.merge_from_dict({
        'synth_data.out_dir': synth, 'synth_data.num_train': 16, 'synth_data.num_val': 8,
        'train_dataloader.dataset.data_root': synth + '/',
        'val_dataloader.dataset.data_root': synth + '/',
        'test_dataloader.dataset.data_root': synth + '/',
        'val_evaluator.ann_file': ann, 'test_evaluator.ann_file': ann,
        'val_evaluator.prefix': 'val', 'test_evaluator.prefix': 'val',
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
        'default_hooks.logger.interval': 1, 'default_hooks.checkpoint.interval': 1,
        **BACKBONE_OPTIONS, **options})
    return cfg


def trial(synth, name, config='faster-rcnn_tiny_synth.py', **options):
    configs = (tiny_config(synth, config, **options), )
    params = {**dict(kv.split('=') for kv in name.split(';')), 'config_hash': config_hash(configs)}
    return Trial(name, params, configs, {'CPU': 1, 'GPU': 0})


SUITE = Suite('unit', '<tests>', 'tiny trials for the launcher tests', (), {})


def launch_args(tmp, **overrides):
    args = dict(scale='tiny', dry_run=False, address=None,
                tracking_uri=f'sqlite:///{tmp}/mlruns/mlflow.db', max_concurrent=None,
                resume=False, no_reuse=False, calibrate_iters=0, storage_path=f'{tmp}/tune',
                work_dir=f'{tmp}/work',
                max_failures=0, flush_interval=1.0, command_line='prm-rga suite run unit')
    args.update(overrides)
    return argparse.Namespace(**args)


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    from prm_rga.datasets import make_synth
    root = tmp_path_factory.mktemp('synth')
    make_synth(root, seed=0, num_train=16, num_val=8, image_size=128)
    return str(root)


def trial_runs(uri, suite='unit'):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(suite)
    if experiment is None:
        return client, []
    return client, client.search_runs([experiment.experiment_id])


def children(runs):
    return {r.data.tags['trial']: r for r in runs if 'mlflow.parentRunId' in r.data.tags}


def test_two_trial_suite_end_to_end(tmp_path, synth, capsys):
    trials = [trial(synth, 'lambda0=1.0;seed=0'),
              trial(synth, 'lambda0=7.0;seed=0', 'faster-rcnn_tiny_rga_synth.py')]
    by_name = {t.name: t for t in trials}
    args = launch_args(tmp_path)
    assert run_suite(SUITE, trials, args) == 0
    out = capsys.readouterr().out
    assert '2 of 2 trials finished, 0 failed' in out and '2/2 done' in out, out
    client, runs = trial_runs(args.tracking_uri)
    (parent, ) = [r for r in runs if 'mlflow.parentRunId' not in r.data.tags]
    assert parent.info.status == 'FINISHED' and parent.data.tags['suite'] == 'unit'
    kids = children(runs)
    assert sorted(kids) == sorted(t.name for t in trials)
    for name, run in kids.items():
        assert run.info.status == 'FINISHED'
        assert run.data.tags['mlflow.parentRunId'] == parent.info.run_id
        assert run.data.tags['scale'] == 'tiny' and run.data.tags['node']
        assert run.data.params['lambda0'] == name.split(';')[0].split('=')[1]
        assert run.data.params['config_hash'] == by_name[name].params['config_hash']
        assert {'train/loss', 'train/lr', 'val/bbox_mAP', 'val/bbox_mAP_50'} <= set(run.data.metrics)
        assert [m.step for m in client.get_metric_history(run.info.run_id, 'train/loss')] == [1, 2]
        assert {'config.py', 'checkpoint.pth', 'eval_records.npz'} <= {
            a.path for a in client.list_artifacts(run.info.run_id)}
    rga = kids['lambda0=7.0;seed=0']
    assert [m.value for m in client.get_metric_history(rga.info.run_id, 'train/lambda')] == [7, 4]
    assert kids['lambda0=1.0;seed=0'].data.params['config_hash'] != rga.data.params['config_hash']
    for run in kids.values():  # the rates later estimates of this family take
        assert all(run.data.metrics[f'cost/{k}'] > 0 for k in ('step_s', 'eval_s', 'wall_s'))
        assert run.data.metrics['cost/iters_per_epoch'] == 2
        assert run.data.tags[estimate.FAMILY] == estimate.family(trials[0])

    # another suite sharing the baseline: it trains only its new trial, estimated from the
    # history of the family, and reuses the baseline's run; the report counts that run once
    other = Suite('unit2', '<tests>', 'shares the baseline', (), {})
    again = [trial(synth, 'lambda0=1.0;seed=0'),
             trial(synth, 'lambda0=3.0;seed=0', 'faster-rcnn_tiny_rga_synth.py',
                   **{'optim_wrapper.lambda0': 3.0})]
    assert run_suite(other, again, args) == 0
    out = capsys.readouterr().out
    baseline = kids['lambda0=1.0;seed=0'].info.run_id
    assert f'lambda0=1.0;seed=0  1 CPU  reused: run {baseline} of suite unit' in out, out
    assert '1 trial(s) like lambda0=3.0;seed=0: rates of 2 finished run(s)' in out, out
    assert re.search(r'\[unit2 tiny\] 0/1 done, \d running, 0 failed \| elapsed 0:00:\d\d, '
                     r'ETA 0:', out), out
    assert '2 of 2 trials finished, 0 failed' in out and '1 reused, 1 handed to Ray Tune' in out
    assert re.search(r'estimate against actual: wall 0:\d\d:\d\d vs 0:\d\d:\d\d '
                     r'\([+-]\d+%\); trial time .* 1 trials\)', out), out
    frame = Runs(['unit', 'unit2'], args.tracking_uri, cache_dir=str(tmp_path / 'cache')).frame
    assert len(frame) == 3 and frame['run_id'].is_unique and baseline in set(frame['run_id'])
    assert run_suite(other, again, launch_args(tmp_path, resume=True)) == 0
    assert 'nothing was trained' in capsys.readouterr().out


SUITE_YAML = """
description: the launcher's CLI test
variants:
  - {ratios: '1:1,1:9', ensemble: separate, model.rpn_head.loss_bbox.loss_weight: 1.0}
  - {model.rpn_head.loss_bbox.loss_weight: '.nan'}  # diverges at iteration 1
  - {train_dataloader.dataset.data_root: MISSING}  # not on the worker
""" + tiny_scale_yaml()


ENSEMBLE_RECORDS = ('m0/eval_records.npz', 'eval_records.npz', 'm1/eval_records.npz')


def cli_suite(tmp_path) -> str:
    """The CLI test's suite file; its third trial reads its training set from MISSING."""
    path = tmp_path / 'launcher_test.yaml'
    path.write_text(SUITE_YAML.replace('MISSING', f'{tmp_path}/nowhere/'))
    return str(path)


def test_cli_runs_a_suite_file_with_an_ensemble_and_a_diverging_trial(tmp_path, synth, capsys,
                                                                      monkeypatch):
    """`prm-rga suite run FILE`: Table 5's "x2" trial trains two detectors and evaluates their
    ensemble; the diverging trial ends FAILED with its error, and so does a trial whose data
    its worker lacks, naming node and path; the other finishes; exit 1. `prm-rga test --run` of
    the x2 run gives its logged metrics and detections exactly."""
    from prm_rga_cli import main
    monkeypatch.setenv('PRM_RGA_SYNTH', synth)
    path = cli_suite(tmp_path)
    uri = f'sqlite:///{tmp_path}/mlruns/mlflow.db'
    common = ['--tracking-uri', uri]
    # a driver that has the data (its check passes) and a worker that does not
    monkeypatch.setattr(launcher, 'check_trial_data', lambda trials: None)
    assert main(['suite', 'run', path, *common, '--storage-path', f'{tmp_path}/tune',
                 '--work-dir', f'{tmp_path}/work', '--flush-interval', '1',
                 '--calibrate-iters', '0']) == 1
    out = capsys.readouterr().out
    ensemble = 'ratios=1:1,1:9;ensemble=separate;model.rpn_head.loss_bbox.loss_weight=1.0;seed=0'
    diverged = 'ratios=1:3;ensemble=none;model.rpn_head.loss_bbox.loss_weight=.nan;seed=0'
    missing = f'{tmp_path}/nowhere/'
    no_data = f'ratios=1:3;ensemble=none;train_dataloader.dataset.data_root={missing};seed=0'
    assert '1 of 3 trials finished, 2 failed' in out, out
    assert f'FAILED {diverged}: DivergedError: training diverged at iteration 1' in out, out
    client, runs = trial_runs(uri, 'launcher_test')
    kids = children(runs)
    assert kids[diverged].info.status == 'FAILED'
    assert kids[diverged].data.tags['error'].startswith('DivergedError: training diverged')
    error = kids[no_data].data.tags['error']
    assert kids[no_data].info.status == 'FAILED'
    assert error.startswith('InputError: train_dataloader.dataset.ann_file: annotation file not '
                            f'found: {missing}annotations/instances_train.json (node '), error
    assert error.endswith(f'(node {kids[no_data].data.tags["node"]})'), error
    run = kids[ensemble]
    assert run.info.status == 'FINISHED', run.data.tags.get('error')
    assert {'m0/train/loss', 'm1/train/loss', 'm0/val/bbox_mAP', 'val/bbox_mAP'} <= set(
        run.data.metrics)
    assert run.data.params['ensemble'] == 'separate'
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert {'config.py', 'eval_records.npz', 'm0', 'm1'} <= set(artifacts), artifacts
    assert 'm0/eval_records.npz' in [a.path for a in client.list_artifacts(run.info.run_id, 'm0')]
    # its members' checkpoints: `prm-rga test --run` evaluates the ensemble again
    assert 'm1/checkpoint.pth' in [a.path for a in client.list_artifacts(run.info.run_id, 'm1')]
    x2 = tmp_path / 'x2'
    assert main(['test', '--run', run.info.run_id, *common, '--work-dir', str(x2)]) == 0
    (row, ) = [line.split() for line in capsys.readouterr().out.splitlines()
               if line.startswith('  val/bbox_mAP ')]
    assert row[1] == row[2] == f'{run.data.metrics["val/bbox_mAP"]:.4f}', row  # now, logged
    # 4 digits of an AP near 0 after 2 iterations cannot tell the ensemble from one member
    # twice: each member with its own weights (not the last one downloaded for both), the same
    # detections bit for bit and every logged metric exactly
    logged = {name: client.download_artifacts(run.info.run_id, name, str(tmp_path / 'r' / name))
              for name in ('m0/checkpoint.pth', 'm1/checkpoint.pth', *ENSEMBLE_RECORDS)}
    for member in ('m0', 'm1'):
        assert filecmp.cmp(x2 / 'run' / member / 'checkpoint.pth',
                           logged[f'{member}/checkpoint.pth'], shallow=False), member
    again, before = (np.load(f) for f in (x2 / 'artifacts' / 'eval_records.npz',
                                          logged['eval_records.npz']))
    assert set(again.files) == set(before.files)
    assert all(np.array_equal(again[key], before[key]) for key in before.files)
    (log, ) = x2.glob('*/*.json')
    metrics = json.loads(log.read_text().splitlines()[-1])
    vals = {k: v for k, v in run.data.metrics.items() if k.startswith('val/')}
    assert vals and all(metrics[key] == value for key, value in vals.items()), (metrics, vals)
    # the report reads the ensemble's records and its members' (Table 5's E, R1, R2) apart,
    # in any order, downloaded or from its cache
    assert not filecmp.cmp(logged['eval_records.npz'], logged['m0/eval_records.npz'],
                           shallow=False)
    for order in (ENSEMBLE_RECORDS, ENSEMBLE_RECORDS[::-1]):
        reader = Runs(['launcher_test'], uri, cache_dir=str(tmp_path / 'cache'))
        for name in order:
            assert filecmp.cmp(reader.artifact(run.info.run_id, name), logged[name],
                               shallow=False), name
    assert main(['suite', 'status', path, *common]) == 1
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:]
            if line.startswith('  ratios=')}
    assert rows == {diverged: 'FAILED', no_data: 'FAILED', ensemble: 'FINISHED'}, out
    assert 'error: DivergedError' in out


def test_resume_without_an_earlier_launch_exits_2(tmp_path, synth, capsys, monkeypatch):
    """`make demo` runs `suite run quick --resume` and starts a new launch on exit 2: a store
    without a launch of the suite is named, and no run is made."""
    from prm_rga_cli import main
    monkeypatch.setenv('PRM_RGA_SYNTH', synth)
    path = cli_suite(tmp_path)
    uri = f'sqlite:///{tmp_path}/mlruns/mlflow.db'
    assert main(['suite', 'run', path, '--resume', '--tracking-uri', uri,
                 '--storage-path', f'{tmp_path}/tune', '--work-dir', f'{tmp_path}/work']) == 2
    assert (f'--resume: no earlier launch of suite launcher_test at scale tiny in {uri}'
            in capsys.readouterr().err)
    assert trial_runs(uri, 'launcher_test')[1] == []
    assert not osp.exists(tmp_path / 'work')


def test_bad_input_fails_before_any_trial(tmp_path, synth):
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    trials = [trial(synth, 'lambda0=1.0;seed=0')]
    with pytest.raises(InputError, match=f'http://127.0.0.1:{port}: no MLflow tracking server'):
        run_suite(SUITE, trials, launch_args(tmp_path, tracking_uri=f'http://127.0.0.1:{port}'))
    greedy = [Trial('gpus=2', {**trials[0].params, 'gpus': '2'}, trials[0].configs,
                    {'CPU': 1, 'GPU': 2})]
    args = launch_args(tmp_path)
    with pytest.raises(InputError, match=r'trial gpus=2 asks for 1 CPU, 2 GPU, more than any '
                       r'node of the Ray cluster has: nodes \{\d+ CPU\}'):
        run_suite(SUITE, greedy, args)
    assert trial_runs(args.tracking_uri)[1] == []  # no empty runs
    assert not osp.exists(tmp_path / 'work')


def test_dry_run_prints_the_trials_and_runs_nothing(tmp_path, synth, capsys):
    trials = [trial(synth, 'lambda0=1.0;seed=0'), trial(synth, 'lambda0=7.0;seed=0')]
    args = launch_args(tmp_path, dry_run=True, tracking_uri='http://127.0.0.1:1')
    assert run_suite(SUITE, trials, args) == 0
    out = capsys.readouterr().out
    assert 'lambda0=7.0;seed=0  1 CPU' in out and 'total if all ran at once: 2 CPU' in out, out
    size = float(re.search(r'final weights to its MLflow run \((\d+\.\d) MiB a trial', out)[1])
    assert 1 < size < 10, out  # the tiny detector: 1.2 M parameters in float32
    assert not osp.exists(tmp_path / 'mlruns') and not osp.exists(tmp_path / 'tune')


def kill_resume_trials(synth):
    """A trial of 1 epoch and one of 5, one at a time: the driver is killed during the second
    (5 epochs of seconds each, so that the test sees its first epoch end before its last)."""
    return [trial(synth, 'lambda0=1.0;seed=0'),
            trial(synth, 'lambda0=1.0;seed=1', **{'train_cfg.max_epochs': 5})]


def drive(tmp, synth):
    """The driver process of the kill/resume test, the one killed."""
    args = launch_args(tmp, max_concurrent=1)
    sys.exit(run_suite(SUITE, kill_resume_trials(synth), args))


def test_driver_killed_mid_suite_resumes(tmp_path, synth, capsys):
    """The driver, a process of its own, is killed (SIGKILL) during the second trial; a new
    driver (here, in this process) continues the launch, which it refused to do while the first
    driver ran."""
    code = (f'import sys; sys.path[:0] = [{TESTS!r}, {ROOT!r}]; import test_launcher; '
            f'test_launcher.drive({str(tmp_path)!r}, {synth!r})')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, TESTS]))
    # its own process group: the Ray processes it started are stopped with it, by group id
    driver = subprocess.Popen([sys.executable, '-c', code], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    uri = launch_args(tmp_path).tracking_uri
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and driver.poll() is None:
            client, runs = trial_runs(uri)
            kids = children(runs)
            second = kids.get('lambda0=1.0;seed=1')
            if second is not None and 'val/bbox_mAP' in second.data.metrics:
                break  # the second trial finished its first epoch (and checkpoint)
            time.sleep(1)
        assert driver.poll() is None, driver.communicate()[0].decode()[-3000:]
        assert kids['lambda0=1.0;seed=0'].info.status == 'FINISHED'
        # while it runs, a second driver's --resume of its launch refuses and changes nothing
        with pytest.raises(InputError, match=f'still running .its driver is process {driver.pid}'):
            run_suite(SUITE, kill_resume_trials(synth), launch_args(tmp_path, resume=True))
        assert driver.poll() is None
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
        try:  # what the killed driver left of its private Ray
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    first_end = kids['lambda0=1.0;seed=0'].info.end_time
    args = launch_args(tmp_path, resume=True, max_concurrent=1)
    assert run_suite(SUITE, kill_resume_trials(synth), args) == 0
    assert '2 of 2 trials finished' in capsys.readouterr().out
    client, runs = trial_runs(uri)
    kids = children(runs)
    assert sorted(kids) == ['lambda0=1.0;seed=0', 'lambda0=1.0;seed=1']
    assert len([r for r in runs if 'mlflow.parentRunId' in r.data.tags]) == 2
    assert all(r.info.status == 'FINISHED' for r in runs)
    assert kids['lambda0=1.0;seed=0'].info.end_time == first_end  # not trained again
    second = kids['lambda0=1.0;seed=1'].info.run_id
    steps = [m.step for m in client.get_metric_history(second, 'train/loss')]
    assert steps == list(range(1, 11))  # 5 epochs of 2 iterations, each step once
    assert [m.step for m in client.get_metric_history(second, 'val/bbox_mAP')] == [1, 2, 3, 4, 5]


def test_two_process_data_parallel_over_gloo(tmp_path, synth):
    """What a trial given k GPUs does, on 2 CPU processes: mmengine's pytorch launcher, one
    model replica per process, rank 0 logging to the trial's run."""
    from experiments.launcher import Launch, _train_member
    uri = f'sqlite:///{tmp_path}/mlflow.db'
    client = MlflowClient(uri)
    experiment = tracking.get_or_create_experiment(client, 'unit', uri)
    run_id = client.create_run(experiment).info.run_id
    launch = Launch(name='dp', suite='unit', scale='tiny', tracking_uri=uri,
                    experiment_id=experiment, parent_run_id='', work_root=str(tmp_path),
                    flush_interval=1.0)
    cfg = tiny_config(synth, **{'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 2})
    work_dir = str(tmp_path / 'work')
    checkpoint = _train_member(cfg, work_dir, launch, run_id, '', {}, {}, processes=2)
    assert checkpoint == osp.join(work_dir, 'epoch_2.pth')
    (log, ) = (tmp_path / 'work').glob('*/*.log')
    text = log.read_text()
    assert 'Distributed launcher: pytorch' in text and 'Distributed training: True' in text
    assert 'GPU number: 2' in text  # mmengine's name for the world size
    # 16 images, 8 per process and iteration: one iteration per epoch
    steps = [m.step for m in client.get_metric_history(run_id, 'train/loss')]
    assert steps == [1, 2]
    assert 'val/bbox_mAP' in client.get_run(run_id).data.metrics


def test_resume_refuses_a_suite_that_changed(tmp_path, synth):
    """Continuing a launch whose trials were built from other configs would mix two
    experiments in one MLflow run: --resume refuses and names the trials."""
    from mlflow.entities import Param
    uri = f'sqlite:///{tmp_path}/mlruns/mlflow.db'
    client = MlflowClient(uri)
    experiment = client.create_experiment('unit')
    parent = client.create_run(experiment, run_name='unit-tiny-1', tags={
        'suite': 'unit', 'scale': 'tiny', 'tune_experiment': f'{tmp_path}/tune/unit-tiny-1'})
    child = client.create_run(experiment, tags={'mlflow.parentRunId': parent.info.run_id,
                                                'suite': 'unit', 'trial': 'lambda0=1.0;seed=0'})
    client.log_batch(child.info.run_id, params=[Param('config_hash', 'an-older-config')])
    args = launch_args(tmp_path, tracking_uri=uri, resume=True)
    with pytest.raises(InputError, match=r"--resume: the trials \['lambda0=1.0;seed=0'\] of "
                       'launch unit-tiny-1 are not in the suite as it is now'):
        run_suite(SUITE, [trial(synth, 'lambda0=1.0;seed=0')], args)


def test_a_launch_of_more_trials_than_a_page_is_seen_whole(tmp_path, capsys):
    """A launch of 1,050 finished trials (more than the 1,000 runs of one search_runs page):
    child_runs and `suite status` see every trial, and --resume finds each trial's run, so
    that none trains again or gets a second run. The parent run is written with the MLflow
    client, the trial runs in one transaction (mlflow_store.write_finished_runs)."""
    from mlflow_store import write_finished_runs
    uri = f'sqlite:///{tmp_path}/mlruns/mlflow.db'
    client = MlflowClient(uri)
    experiment = client.create_experiment('unit')
    parent = client.create_run(experiment, run_name='unit-tiny-1', tags={
        'suite': 'unit', 'scale': 'tiny', 'tune_experiment': f'{tmp_path}/tune/unit-tiny-1'})
    parent_id = parent.info.run_id
    configs = (Config(dict(randomness=dict(seed=0))), )  # never trained: every run finished
    params = {'seed': '0', 'config_hash': config_hash(configs)}
    trials = [Trial(f'lambda0={i};seed=0', {'lambda0': str(i), **params}, configs,
                    {'CPU': 1, 'GPU': 0}) for i in range(1050)]
    write_finished_runs(client, experiment, [
        (t.name, {'mlflow.parentRunId': parent_id, 'suite': 'unit', 'trial': t.name,
                  'scale': 'tiny'}, t.params, {'val/bbox_mAP': 0.25}) for t in trials])
    client.set_terminated(parent_id, 'KILLED')
    made = {r.info.run_id for r in tracking.search_runs(client, [experiment])}

    assert sorted(child_runs(client, experiment, parent_id)) == sorted(t.name for t in trials)
    assert print_status('unit', argparse.Namespace(tracking_uri=uri, scale=None)) == 0
    out = capsys.readouterr().out
    assert 'launch unit-tiny-1 [KILLED]: 1050 trial runs' in out
    assert all(f'  {t.name} ' in out for t in trials)

    assert run_suite(SUITE, trials, launch_args(tmp_path, tracking_uri=uri, resume=True)) == 0
    assert '1050 of 1050 trials finished, 0 failed' in capsys.readouterr().out
    assert {r.info.run_id for r in tracking.search_runs(client, [experiment])} == made
    assert client.get_run(parent_id).info.status == 'FINISHED'
