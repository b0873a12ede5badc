"""From a tracked run back to its model: a PRM+RGA trial trained by the launcher against a real
`mlflow server` (proxied artifacts), then evaluated from its logged config and checkpoint, by
`prm-rga test --run` from a fresh directory (server and SQLite store), and trained again by
`prm-rga train --run`; the errors a wrong run id, a run without artifacts or a dead store
give."""
import glob
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mlflow import MlflowClient
from mmengine.config import Config

from experiments import tracking
from experiments.launcher import run_suite
from prm_rga_cli import main
from test_cluster import Servers, free_port
from test_launcher import SUITE, launch_args, trial

PRM = 'faster-rcnn_tiny_rga-prm_synth.py'
METRICS = ('val/bbox_mAP', 'val/bbox_mAP_50', 'val/h0/bbox_mAP', 'val/gt1-3/bbox_mAP')


@pytest.fixture(scope='module')
def tracked(tmp_path_factory):
    """A 2-epoch tiny PRM+RGA trial, tracked on an `mlflow server`: (uri, its child run)."""
    from prm_rga.datasets import make_synth
    root = tmp_path_factory.mktemp('rerun')
    synth = str(root / 'synth')
    make_synth(synth, seed=0, num_train=16, num_val=8, image_size=128)
    (root / 'mlflow').mkdir()
    servers, port = Servers(str(root)), free_port()
    try:
        servers.start_mlflow(port)
        uri = f'http://127.0.0.1:{port}'
        trials = [trial(synth, 'ratios=1:1,1:9;seed=0', PRM,
                        **{'train_cfg.max_epochs': 2, 'randomness.seed': 0})]
        assert run_suite(SUITE, trials, launch_args(root, tracking_uri=uri)) == 0
        client = MlflowClient(uri)
        (run, ) = client.search_runs([client.get_experiment_by_name('unit').experiment_id],
                                     filter_string="tags.trial = 'ratios=1:1,1:9;seed=0'")
        yield uri, run
    finally:
        servers.stop_all()


def json_metrics(work_dir) -> dict:
    """The metrics `prm-rga test` wrote to its json log."""
    (path, ) = glob.glob(osp.join(work_dir, '*', '*.json'))
    return json.loads(open(path).read().splitlines()[-1])


def scores(work_dir) -> np.ndarray:
    return np.load(osp.join(work_dir, 'artifacts', 'eval_records.npz'))['score']


def test_the_logged_config_and_checkpoint_give_the_logged_ap(tracked, tmp_path):
    """`prm-rga test` on the run's own config.py and checkpoint.pth: the logged metrics
    exactly, the same detections as the trial's last evaluation; the config names nothing
    of the launcher, and mmdet's tools/train.py trains it through its custom_imports."""
    import mmdet
    uri, run = tracked
    client = MlflowClient(uri)
    assert {'config.py', 'checkpoint.pth', 'eval_records.npz'} <= {
        a.path for a in client.list_artifacts(run.info.run_id)}
    config = client.download_artifacts(run.info.run_id, 'config.py', str(tmp_path))
    checkpoint = client.download_artifacts(run.info.run_id, 'checkpoint.pth', str(tmp_path))
    logged = client.download_artifacts(run.info.run_id, 'eval_records.npz', str(tmp_path))
    text = open(config).read()
    assert 'TuneReportHook' not in text and 'MlflowRunBackend' not in text
    cfg = Config.fromfile(config)
    assert 'work_dir' not in cfg and 'launcher' not in cfg and cfg.resume is False
    assert cfg.randomness.seed == 0 and cfg.custom_imports.imports == ['prm_rga']
    assert len(cfg.model.roi_head.bbox_head) == 2 and cfg.optim_wrapper.type == 'RGAOptimWrapper'
    work = str(tmp_path / 'test')
    assert main(['test', config, '--checkpoint', checkpoint, '--work-dir', work]) == 0
    metrics = json_metrics(work)
    for key in METRICS:
        assert metrics[key] == run.data.metrics[key], key
    # the same detections; scores in float32 as summed by another number of threads than
    # the trial's one (test --run computes with the run's: the same bits, below)
    assert np.allclose(scores(work), np.load(logged)['score'], rtol=1e-5, atol=0)

    # mmdet's own tools/train.py in a fresh process: the config's custom_imports registers
    # the plugins (both heads' losses, the RGA schedule over its 2 iterations of 8 images)
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    subprocess.run([sys.executable, script, config, '--work-dir', str(tmp_path / 'mmdet'),
                    '--cfg-options', 'train_cfg.max_epochs=1'],
                   check=True, cwd=tmp_path, capture_output=True, timeout=300)
    assert (tmp_path / 'mmdet' / 'epoch_1.pth').exists()
    (log, ) = (tmp_path / 'mmdet').glob('*/vis_data/scalars.json')
    logs = [row for row in map(json.loads, log.read_text().splitlines()) if 'loss' in row]
    assert [row['lambda'] for row in logs] == [7, 4]  # 7 - 6 t / T, T = 2
    assert all('h0.loss_cls' in row and 'h1.loss_cls' in row for row in logs), logs


def printed_metrics(out: str) -> dict:
    """`prm-rga test --run`'s table: metric -> (this evaluation, logged)."""
    rows = [line.split() for line in out.splitlines() if line.startswith('  val/')]
    return {key: (float(now), float(logged)) for key, now, logged in rows}


def test_test_run_from_a_fresh_directory(tracked, tmp_path, monkeypatch, capsys):
    """`prm-rga test --run RUN_ID --tracking-uri http://...` in an empty directory: the run's
    model and config come from the server, the logged AP and detections come out again."""
    uri, run = tracked
    monkeypatch.chdir(tmp_path)
    assert main(['test', '--run', run.info.run_id, '--tracking-uri', uri]) == 0
    shown = printed_metrics(capsys.readouterr().out)
    assert set(METRICS) <= set(shown)
    for key in METRICS:
        assert shown[key] == (round(run.data.metrics[key], 4), ) * 2, key
    work = tmp_path / 'work_dirs' / f'test-{run.info.run_id}'
    metrics = json_metrics(work)
    assert all(metrics[key] == run.data.metrics[key] for key in METRICS)
    logged = MlflowClient(uri).download_artifacts(run.info.run_id, 'eval_records.npz',
                                                  str(tmp_path))
    assert np.array_equal(scores(work), np.load(logged)['score'])


def test_train_run_reproduces_the_run(tracked, tmp_path, capsys):
    """`prm-rga train --run`: a new run of the experiment, tagged with its source, with the
    source's params; the same seed gives the same losses at every step and the same final AP;
    it keeps its own config and checkpoint, and the report leaves it out (no trial tag)."""
    uri, run = tracked
    assert main(['train', '--run', run.info.run_id, '--tracking-uri', uri,
                 '--work-dir', str(tmp_path / 'again')]) == 0
    client = MlflowClient(uri)
    (again, ) = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.source_run = '{run.info.run_id}'")
    assert again.info.status == 'FINISHED' and again.info.run_id in capsys.readouterr().out
    assert again.data.params == run.data.params
    assert 'trial' not in again.data.tags and 'mlflow.parentRunId' not in again.data.tags
    for key in METRICS:
        assert again.data.metrics[key] == run.data.metrics[key], key

    def losses(r):
        return [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, 'train/loss')]
    assert losses(again) == losses(run) and len(losses(run)) == 4
    assert {'config.py', 'checkpoint.pth', 'eval_records.npz'} <= {
        a.path for a in client.list_artifacts(again.info.run_id)}


def test_test_run_on_a_sqlite_store_and_its_errors(tracked, tmp_path, capsys):
    """The embedded store works the same (the run's artifacts copied into one), and each way
    `--run` can fail is named, exit 2: an unknown run id, a run without the artifacts, a store
    file that does not exist, a server that does not answer."""
    from mlflow.entities import Metric
    uri, run = tracked
    server = MlflowClient(uri)
    store = f'sqlite:///{tmp_path}/mlruns/mlflow.db'
    client = MlflowClient(store)
    experiment = tracking.get_or_create_experiment(client, 'unit', store)
    copy = client.create_run(experiment, run_name=run.info.run_name).info.run_id
    for name in ('config.py', 'checkpoint.pth'):
        client.log_artifact(copy, server.download_artifacts(run.info.run_id, name, str(tmp_path)))
    client.log_batch(copy, metrics=[Metric(key, run.data.metrics[key], 0, 2) for key in METRICS])
    assert main(['test', '--run', copy, '--tracking-uri', store,
                 '--work-dir', str(tmp_path / 'test')]) == 0
    shown = printed_metrics(capsys.readouterr().out)
    assert all(shown[key][0] == shown[key][1] for key in METRICS), shown

    bare = client.create_run(experiment, run_name='bare').info.run_id
    client.log_artifact(bare, server.download_artifacts(run.info.run_id, 'config.py',
                                                        str(tmp_path / 'bare')))
    for argv, message in [
            (['--run', 'f' * 32, '--tracking-uri', store], f'run {"f" * 32}: no such run in '
             f'{store}'),
            (['--run', 'f' * 32, '--tracking-uri', uri], f'run {"f" * 32}: no such run in {uri}'),
            (['--run', bare, '--tracking-uri', store], f'run {bare} (bare) has no artifact '
             'checkpoint.pth (a paper-scale trial logs it only when its suite sets'),
            (['--run', copy, '--tracking-uri', f'sqlite:///{tmp_path}/none.db'],
             f'tracking URI sqlite:///{tmp_path}/none.db: no MLflow store there'),
            (['--run', copy, '--tracking-uri', f'http://127.0.0.1:{free_port()}'],
             'no MLflow tracking server answers there')]:
        assert main(['test', *argv, '--work-dir', str(tmp_path / 'err')]) == 2, argv
        assert message in capsys.readouterr().err, argv
    empty = client.create_run(experiment, run_name='empty').info.run_id
    assert main(['train', '--run', empty, '--tracking-uri', store,
                 '--work-dir', str(tmp_path / 'err')]) == 2
    assert f'run {empty} (empty) has no artifact config.py' in capsys.readouterr().err
    assert [r.info.run_name for r in client.search_runs([experiment])] == ['empty', 'bare',
                                                                          run.info.run_name]
