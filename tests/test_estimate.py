"""Cost before launch: the schedule of trials on free resources, a trial's time from its rates,
the dry run's estimate from a calibration here when the store has no history of the family and
from the family's finished runs when it has (the calibration not run again), and the live ETA
before any trial has finished."""
import re
from types import SimpleNamespace

from mlflow import MlflowClient
from mmengine.config import Config

from experiments import estimate
from experiments.launcher import Progress, run_suite
from test_launcher import SUITE, launch_args, synth, trial  # noqa: F401  (synth: a fixture)


def test_wall_time_is_tunes_schedule_on_the_free_resources():
    cpu = {'CPU': 1, 'GPU': 0}
    assert estimate.wall_time([10, 10, 10], [cpu] * 3, {'CPU': 2}) == 20
    assert estimate.wall_time([10, 10, 10], [cpu] * 3, {'CPU': 2}, max_concurrent=1) == 30
    assert estimate.wall_time([30, 10, 10, 10], [cpu] * 4, {'CPU': 2}) == 30
    gpu = {'CPU': 1, 'GPU': 1}
    assert estimate.wall_time([10, 10], [gpu] * 2, {'CPU': 8, 'GPU': 1}) == 20
    assert estimate.wall_time([], [], {'CPU': 2}) == 0


def test_a_trial_costs_setup_steps_and_evaluations_per_detector():
    rates = estimate.Rates(step_s=0.5, eval_s=20.0, setup_s=30.0, iters_per_epoch=100)
    cfg = Config(dict(train_cfg=dict(max_epochs=12, val_interval=3)))
    one = SimpleNamespace(configs=(cfg, ))
    assert estimate.trial_seconds(one, rates) == 30 + 0.5 * 1200 + 20 * 4
    odd = Config(dict(train_cfg=dict(max_epochs=10, val_interval=3)))  # 3, 6, 9 and the last
    assert estimate.trial_seconds(SimpleNamespace(configs=(odd, )), rates) == 30 + 500 + 80
    two = SimpleNamespace(configs=(cfg, cfg))  # an ensemble: both members and its evaluation
    assert estimate.trial_seconds(two, rates) == 2 * (30 + 600 + 80) + 20


def test_dry_run_calibrates_without_history_and_uses_history_once_there(
        tmp_path, synth, capsys, monkeypatch):  # noqa: F811
    trials = [trial(synth, 'lambda0=1.0;seed=0'), trial(synth, 'lambda0=7.0;seed=0')]
    args = launch_args(tmp_path, dry_run=True, calibrate_iters=2)
    assert run_suite(SUITE, trials, args) == 0
    out = capsys.readouterr().out
    assert '2 trial(s) like lambda0=1.0;seed=0: no history; calibrated here in' in out, out
    step = float(re.search(r'evaluation of a few val images\): (\d+\.\d+) s a step', out)[1])
    assert step > 0
    assert re.search(r'lambda0=7\.0;seed=0  1 CPU  0:00:\d\d', out), out
    assert re.search(r'estimate: 0:\d\d:\d\d wall on \d+ CPU(, \d+ GPU)? free; 0\.\d\d CPU-hours, '
                     r'0\.00 GPU-hours; 0 reused trials at cost 0', out), out
    assert "Ray Tune's start: " in out and 'a fresh process importing what a trial imports' in out
    assert not (tmp_path / 'mlruns').exists()  # a dry run writes nothing

    # a finished run of the family, with the rates a trial logs, and its launch's start
    client = MlflowClient(args.tracking_uri)
    experiment = client.create_experiment('other')
    parent = client.create_run(experiment).info.run_id
    client.log_metric(parent, 'cost/startup_s', 9.0)
    run_id = client.create_run(experiment, tags={
        'mlflow.parentRunId': 'p', 'trial': 'x',
        estimate.FAMILY: estimate.family(trials[0])}).info.run_id
    rates = estimate.Rates(step_s=2.0, eval_s=30.0, setup_s=40.0, iters_per_epoch=2)
    estimate.log_rates(client, run_id, rates, 200.0)
    client.set_terminated(run_id, 'FINISHED')

    def no_calibration(*a):
        raise AssertionError('calibrated although the store has history')

    monkeypatch.setattr(estimate, 'calibrate', no_calibration)
    assert run_suite(SUITE, trials, args) == 0
    out = capsys.readouterr().out
    assert '2 trial(s) like lambda0=1.0;seed=0: rates of 1 finished run(s)' in out, out
    # 1 epoch of 2 iterations and one evaluation each: 40 + 2 * 2 + 30 s, after Ray's 9 s
    assert 'lambda0=7.0;seed=0  1 CPU  0:01:14' in out, out
    assert re.search(r'estimate: 0:01:23 wall on \d+ CPU.*; 0\.04 CPU-hours', out), out
    assert "Ray Tune's start: 9 s, median of 1 launch(es)" in out, out
    assert client.get_run(run_id).data.metrics['cost/wall_s'] == 200.0


def tune_trial(name, status, progress=None):
    return SimpleNamespace(config={'trial': name}, status=status, trial_id=name,
                           last_result={'progress': progress} if progress else {})


def test_the_eta_is_known_before_any_trial_finished(capsys, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr('experiments.launcher.time.monotonic', lambda: clock[0])
    cpu = {'CPU': 1}
    est = estimate.Estimate({'a': 600.0, 'b': 600.0, 'c': 300.0}, [], startup_s=20.0)
    progress = Progress('unit tiny', est, {'a': cpu, 'b': cpu, 'c': cpu}, {'CPU': 2}, every=0)
    progress.setup()
    trials = [tune_trial('a', 'PENDING'), tune_trial('b', 'PENDING'), tune_trial('c', 'PENDING')]
    progress.on_step_end(0, trials)  # Ray Tune starting: its estimated start, then the trials
    assert capsys.readouterr().out.strip().endswith('elapsed 0:00:00, ETA 0:15:20')
    clock[0] += 5
    for t in trials[:2]:
        t.status = 'RUNNING'
    progress.on_step_end(0, trials)
    assert capsys.readouterr().out.strip().endswith('elapsed 0:00:05, ETA 0:15:00')
    clock[0] += 60  # a minute later: a has done a fifth of its iterations, b has not reported
    trials[0].last_result = {'progress': 0.2}
    progress.on_step_end(1, trials)
    # a: 240 s left at its own pace, b: 540 s by its estimate, then c after a
    assert capsys.readouterr().out.strip().endswith(
        '0/3 done, 2 running, 0 failed | elapsed 0:01:05, ETA 0:09:00')
