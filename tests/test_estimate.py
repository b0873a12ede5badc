"""Cost before launch: the schedule of trials on free resources, a trial's time from its rates,
the dry run's estimate from a calibration here when the store has no history of the family and
from the family's finished runs when it has (the calibration not run again), and the live ETA
before any trial has finished."""
import re
from types import SimpleNamespace

from mlflow import MlflowClient
from mmengine.config import Config

from experiments import estimate, reuse
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


def finished_run(client, experiment, trial, suite='done', startup_s=None) -> str:
    """A FINISHED trial run of TRIAL's config in EXPERIMENT (as a launch of SUITE leaves it),
    its launch's start logged when STARTUP_S; its run id."""
    parent = client.create_run(experiment).info.run_id
    if startup_s is not None:
        client.log_metric(parent, 'cost/startup_s', startup_s)
    run_id = client.create_run(experiment, tags={
        'mlflow.parentRunId': parent, 'suite': suite, 'trial': trial.name}).info.run_id
    client.log_param(run_id, 'config_hash', trial.params['config_hash'])
    client.set_terminated(run_id, 'FINISHED')
    return run_id


def test_a_dry_run_of_several_suites_costs_each_config_once(tmp_path, synth, capsys,
                                                           monkeypatch):  # noqa: F811
    """`suite run a b --dry-run`: b's trial that a trains counts as reused, the trial a
    finished run of the store trained is reused, the family of all of them is calibrated once
    for the command, and the total is the sum of the suites launched one after the other."""
    from experiments.launcher import dry_run
    from experiments.suites import Suite
    rga = 'faster-rcnn_tiny_rga_synth.py'
    shared = trial(synth, 'lambda0=1.0;seed=0')
    first = Suite('a', '<tests>', '', (), {}), [shared, trial(synth, 'lambda0=7.0;seed=0', rga)]
    stored = trial(synth, 'lambda0=3.0;seed=0', rga, **{'optim_wrapper.lambda0': 3.0})
    second = Suite('b', '<tests>', '', (), {}), [
        trial(synth, 'lambda0=1.0;seed=0'), stored, trial(synth, 'epochs=2;seed=0', **{
            'train_cfg.max_epochs': 2})]
    args = launch_args(tmp_path, dry_run=True, calibrate_iters=1)
    (tmp_path / 'mlruns').mkdir()
    client = MlflowClient(args.tracking_uri)
    source = finished_run(client, client.create_experiment('done'), stored, startup_s=9.0)
    records = len(client.search_runs(reuse.experiment_ids(client)))
    calls = []

    def counted(one, iters):
        calls.append(one.name)
        return real_calibrate(one, iters)

    real_calibrate = estimate.calibrate
    monkeypatch.setattr(estimate, 'calibrate', counted)
    assert dry_run([first, second], args) == 0
    out = capsys.readouterr().out
    assert calls == ['lambda0=1.0;seed=0'], out  # one family, calibrated once
    assert out.count('calibrating here') == 1, out
    assert 'suite a: 2 trials, 0 reused\n' in out, out
    assert 'suite b: 3 trials, 2 reused (1 trained by an earlier suite of this command)' in out
    assert 'lambda0=1.0;seed=0  1 CPU  reused: trained by suite a earlier in this command' in out
    assert f'lambda0=3.0;seed=0  1 CPU  reused: run {source} of suite done' in out, out
    assert re.search(r'epochs=2;seed=0     1 CPU  0:\d\d:\d\d', out), out
    assert ('1 trial(s) like epochs=2;seed=0: no history; the calibration above, on '
            'lambda0=1.0;seed=0: ') in out, out
    walls = re.findall(r'^estimate: (\d:\d\d:\d\d) wall', out, re.M)
    assert len(walls) == 3, out  # a, b and the total
    # trials, reused from the store, by an earlier suite, finished in a launch, to train
    assert re.search(rf'^  a +2 +0 +0 +0 +2  {walls[0]}$', out, re.M), out
    assert re.search(rf'^  b +3 +1 +1 +0 +1  {walls[1]}$', out, re.M), out
    seconds = [sum(int(x) * 60 ** i for i, x in enumerate(reversed(w.split(':')))) for w in walls]
    assert abs(seconds[2] - seconds[0] - seconds[1]) <= 1, walls  # each launch pays Ray's start
    assert ('3 of 5 trials to train, 1 reused from the store, 1 trained by an earlier suite of '
            'this command') in out, out
    assert len(client.search_runs(reuse.experiment_ids(client))) == records  # writes nothing


def test_several_suites_run_only_as_a_dry_run_each_once(capsys):
    from prm_rga_cli import main
    assert main(['suite', 'run', 'quick', 'table1', '--seeds', '0']) == 2
    assert ('several suites are planned together only with --dry-run; launch them one at a '
            'time, as `make reproduce` does') in capsys.readouterr().err
    assert main(['suite', 'run', 'quick', 'table1', 'quick', '--dry-run']) == 2
    assert 'suite run: suite quick named more than once' in capsys.readouterr().err
