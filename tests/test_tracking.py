"""The MLflow wiring: the store's location, the reachability check, the metric names and the
visualizer backend's batching, retries and deduplication, and the notes the MLflow UI shows."""
import os.path as osp
import socket

import pytest
from mlflow import MlflowClient

from experiments import notes, tracking
from experiments.suites import load_suite
from experiments.mlflow_backend import MlflowRunBackend, TrackingError
from prm_rga.errors import InputError


def test_default_store_is_absolute_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = tracking.default_tracking_uri()
    assert uri == f'sqlite:///{tmp_path}/mlruns/mlflow.db'
    assert tracking.artifact_location(uri, 'quick') == (tmp_path / 'mlruns' / 'artifacts' /
                                                        'quick').as_uri()
    assert tracking.artifact_location('http://127.0.0.1:5000', 'quick') is None


def test_metric_names():
    assert tracking.metric_names({'loss': 1.0, 'num_pos/h0': 3, 'lr': 0.1}) == {
        'train/loss': 1.0, 'train/num_pos/h0': 3, 'train/lr': 0.1}
    assert tracking.metric_names({'val/bbox_mAP': 0.5, 'val/gt1-3/bbox_mAP': 0.4}) == {
        'val/bbox_mAP': 0.5, 'val/gt1-3/bbox_mAP': 0.4}
    assert tracking.metric_names({'coco/bbox_mAP': 0.5, 'time': 0.2}) == {
        'val/bbox_mAP': 0.5, 'val/time': 0.2}


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_unreachable_server_and_bad_uris_are_named(tmp_path):
    uri = f'http://127.0.0.1:{free_port()}'
    with pytest.raises(InputError, match=f'tracking URI {uri}: no MLflow tracking server'):
        tracking.check_tracking_uri(uri, timeout=2)
    with pytest.raises(InputError, match='file:///x'):
        tracking.check_tracking_uri('file:///x')
    uri = f'sqlite:///{tmp_path}/a/b/mlflow.db'
    tracking.check_tracking_uri(uri)
    assert osp.isdir(tmp_path / 'a' / 'b')


@pytest.fixture
def run(tmp_path):
    uri = f'sqlite:///{tmp_path}/mlflow.db'
    client = MlflowClient(uri)
    experiment = tracking.get_or_create_experiment(client, 'unit', uri)
    return uri, client, client.create_run(experiment).info.run_id


def test_an_interrupted_download_leaves_no_file(run, tmp_path, monkeypatch):
    """An artifact is at FOLDER/PATH only whole: a download that dies half-way leaves nothing a
    cache (the report's `.artifacts/`) would take for it, and the next one fetches it whole."""
    uri, client, run_id = run
    for member in ('m0', 'm1'):
        (tmp_path / member).mkdir()
        (tmp_path / member / 'scores.npz').write_bytes(member.encode() * 1000)
        client.log_artifact(run_id, str(tmp_path / member / 'scores.npz'), member)
    real = MlflowClient.download_artifacts

    def dies_half_way(self, run_id, path, dst):
        with open(osp.join(dst, osp.basename(path)), 'wb') as f:
            f.write(b'm0' * 10)
        raise OSError('connection reset')

    folder = tmp_path / 'cache'
    monkeypatch.setattr(MlflowClient, 'download_artifacts', dies_half_way)
    with pytest.raises(OSError, match='connection reset'):
        tracking.download_artifact(client, run_id, 'm0/scores.npz', str(folder))
    assert [p.name for p in folder.rglob('*') if p.is_file()] == []
    monkeypatch.setattr(MlflowClient, 'download_artifacts', real)
    for member in ('m0', 'm1'):  # each member's file in its own folder
        local = tracking.download_artifact(client, run_id, f'{member}/scores.npz', str(folder))
        assert local == str(folder / member / 'scores.npz')
        assert open(local, 'rb').read() == member.encode() * 1000
    assert sorted(p.name for p in folder.rglob('*')) == ['m0', 'm1', 'scores.npz', 'scores.npz']


def history(client, run_id, key):
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_backend_batches_and_survives_failed_flushes(run):
    uri, client, run_id = run
    backend = MlflowRunBackend(tracking_uri=uri, run_id=run_id, flush_interval=3600)
    calls, real = [], backend.experiment.log_batch

    def flaky(run_id, metrics=()):
        calls.append(len(metrics))
        if len(calls) <= 2:
            raise ConnectionError('server restarting')
        return real(run_id, metrics=metrics)

    backend._client.log_batch = flaky
    for step in range(1, 11):
        backend.add_scalars({'loss': 1.0 / step, 'num_pos/h0': step}, step=step)
    backend.add_scalars({'coco/bbox_mAP': 0.25}, step=1)
    backend.close()  # two failures, then one batch with every point
    assert calls == [21, 21, 21]
    assert history(client, run_id, 'train/loss') == [(s, 1.0 / s) for s in range(1, 11)]
    assert history(client, run_id, 'train/num_pos/h0') == [(s, s) for s in range(1, 11)]
    assert history(client, run_id, 'val/bbox_mAP') == [(1, 0.25)]


def test_backend_fails_when_points_cannot_be_delivered(run):
    uri, client, run_id = run
    backend = MlflowRunBackend(tracking_uri=uri, run_id=run_id, flush_interval=3600,
                               close_timeout=1.5)

    def down(run_id, metrics=()):
        raise ConnectionError('refused')

    backend.add_scalars({'loss': 1.0}, step=1)
    backend._client.log_batch = down
    with pytest.raises(TrackingError, match=f'1 metric points to run {run_id}'):
        backend.close()


def test_backend_continues_a_run_without_repeating_steps(run):
    """A trial resumed from a checkpoint logs again the steps after it: each step stays once."""
    uri, client, run_id = run
    first = MlflowRunBackend(tracking_uri=uri, run_id=run_id, flush_interval=0.1)
    for step in range(1, 6):
        first.add_scalars({'loss': float(step)}, step=step)
    first.close()
    resumed = MlflowRunBackend(tracking_uri=uri, run_id=run_id, flush_interval=0.1)
    for step in range(4, 9):
        resumed.add_scalars({'loss': 10.0 + step}, step=step)
    resumed.close()
    assert history(client, run_id, 'train/loss') == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0),
                                                     (5, 5.0), (6, 16.0), (7, 17.0), (8, 18.0)]


def test_a_checkpoint_reaches_tune_after_the_steps_before_it(run, tmp_path, monkeypatch):
    """A trial killed after Tune took its epoch checkpoint resumes there and does not train the
    steps before it again: TuneReportHook delivers them first (`flush`), so the run has them.
    A store that refuses them keeps them for the flush thread."""
    from types import SimpleNamespace

    from experiments import launcher
    uri, client, run_id = run
    backend = MlflowRunBackend(tracking_uri=uri, run_id=run_id, flush_interval=3600)
    for step in (1, 2, 3, 4):  # epoch 2 ended at step 4; the flush thread sends hourly
        backend.add_scalars({'loss': float(step)}, step=step)
    (tmp_path / 'epoch_2.pth').write_bytes(b'weights')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    runner = SimpleNamespace(work_dir=str(tmp_path), epoch=2, iter=4, max_iters=10,
                             visualizer=SimpleNamespace(get_backend={
                                 'MlflowRunBackend': backend}.get))
    reported = []
    monkeypatch.setattr(launcher.tune, 'report', lambda metrics, checkpoint=None: reported.append(
        (checkpoint is not None, [s for s, _ in history(client, run_id, 'train/loss')])))
    launcher.TuneReportHook().after_train_epoch(runner)
    assert reported == [(True, [1, 2, 3, 4])]

    def restarting(run_id, metrics=()):
        raise ConnectionError('server restarting')

    backend.add_scalars({'loss': 5.0}, step=5)
    real, backend._client.log_batch = backend._client.log_batch, restarting
    assert backend.flush() is False
    backend._client.log_batch = real
    backend.close()
    assert history(client, run_id, 'train/loss') == [(s, float(s)) for s in range(1, 6)]


def test_buckets_without_gt_are_absent_not_minus_one(run):
    """pycocotools' -1 ("no GT of this size / in this subset") never reaches MLflow as a score;
    a real 0 AP and other negative values do."""
    uri, client, run_id = run
    backend = MlflowRunBackend(tracking_uri=uri, run_id=run_id, flush_interval=3600)
    backend.add_scalars({'val/bbox_mAP': 0.0, 'val/bbox_mAP_l': -1.0, 'val/gt8-inf/bbox_mAP': -1,
                         'val/h1/bbox_mAP_l': -1.0, 'val/bbox_mAP_m': 0.3}, step=2)
    backend.add_scalars({'loss_delta': -1.0}, step=2)
    backend.close()
    assert client.get_run(run_id).data.metrics == {
        'val/bbox_mAP': 0.0, 'val/bbox_mAP_m': 0.3, 'train/loss_delta': -1.0}


@pytest.fixture(params=['sqlite', 'server'])
def store(request, tmp_path):
    """An MLflow store as the launcher meets one: a SQLite file, or an `mlflow server`."""
    if request.param == 'sqlite':
        yield f'sqlite:///{tmp_path}/mlflow.db'
        return
    from test_cluster import Servers
    (tmp_path / 'mlflow').mkdir()
    servers, port = Servers(str(tmp_path)), free_port()
    try:
        servers.start_mlflow(port)
        yield f'http://127.0.0.1:{port}'
    finally:
        servers.stop_all()


def test_search_runs_reads_every_page(store):
    client = MlflowClient(store)
    experiment = client.create_experiment('unit')
    ids = [client.create_run(experiment, start_time=1000 + i, tags={'trial': str(i % 2)})
           .info.run_id for i in range(25)]
    client.create_run(client.create_experiment('other'))
    assert [r.info.run_id for r in tracking.search_runs(client, [experiment], page_size=10)] \
        == ids  # oldest first, over three pages
    assert [r.info.run_id for r in tracking.search_runs(
        client, [experiment], "tags.trial = '1'", page_size=5)] == ids[1::2]
    assert [r.info.run_id for r in tracking.search_runs(
        client, [experiment], max_results=15, page_size=10)] == ids[:15]
    assert [r.info.run_id for r in tracking.search_runs(
        client, [experiment], order_by=['attributes.start_time DESC'], max_results=1)] == ids[-1:]


def test_notes_name_what_a_suite_reproduces_and_how_it_was_launched(tmp_path):
    suite = load_suite('quick')
    note = notes.experiment_note(suite)
    assert note.startswith('The embedded default\'s main job')
    assert 'Reproduces Fig. 1, Fig. 3, Fig. 6 of the paper' in note
    parent = notes.parent_note(suite, 'tiny', 4, 'prm-rga suite run quick', 'abc123')
    assert '`prm-rga suite run quick` at commit `abc123`' in parent
    resumed = notes.resumed_note(parent, 'prm-rga suite run quick --resume', None)
    assert resumed.startswith(parent) and resumed.endswith(
        'Resumed by `prm-rga suite run quick --resume` (not run from a git checkout: no commit).')
    assert notes.git_commit(str(tmp_path)) is None


def test_ui_serves_the_local_store_on_localhost(tmp_path, monkeypatch):
    import argparse

    from experiments.ui import ui_command
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(port=5123, tracking_uri=None)
    with pytest.raises(InputError, match='no MLflow store at sqlite:///.*mlruns/mlflow.db'):
        ui_command(args)
    uri = tracking.default_tracking_uri()
    tracking.check_tracking_uri(uri)
    tracking.get_or_create_experiment(MlflowClient(uri), 'quick', uri)
    command = ui_command(args)
    assert command[1:] == ['-m', 'mlflow', 'ui', '--backend-store-uri', uri,
                           '--host', '127.0.0.1', '--port', '5123']
