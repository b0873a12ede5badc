"""Cluster mode against real servers on 127.0.0.1, started as a lab starts them (tests/servers.py):
a Ray head and a second Ray node (`ray start`), an MLflow server with proxied artifacts. The
suite runs through the CLI with --address and an http:// tracking URI; everything is checked
through the server. The servers are stopped by process group in the fixtures' teardown."""
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from prm_rga.datasets import make_synth
from servers import (free_port, ray_env, start_mlflow_server, start_ray_head,
                     start_ray_worker)

pytestmark = pytest.mark.timeout(900)

SUITE = """\
description: two tiny trials for the cluster tests
analysis: []
grid: {{lambda0: [1, 7]}}
scales:
  tiny:
    resources: {{CPU: 1, GPU: 0}}
    cfg_options:
      synth_data.num_train: 16
      synth_data.num_val: 8
      train_dataloader.num_workers: 0
      train_dataloader.persistent_workers: false
      val_dataloader.num_workers: 0
      val_dataloader.persistent_workers: false
      test_dataloader.num_workers: 0
      test_dataloader.persistent_workers: false
      train_cfg.max_epochs: {epochs}
      train_cfg.val_interval: {epochs}
      default_hooks.logger.interval: 1
      default_hooks.checkpoint.interval: {epochs}
"""


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp('synth')
    make_synth(root, seed=0, num_train=16, num_val=8, image_size=128)
    return str(root)


@pytest.fixture(scope='module')
def ray_cluster(tmp_path_factory):
    """A head and a worker node, 1 CPU each: two trials can only run on different nodes."""
    tmp = tmp_path_factory.mktemp('ray')
    port = free_port()
    servers = []
    try:
        servers.append(start_ray_head(tmp, port))
        servers.append(start_ray_worker(tmp, port))
        yield f'127.0.0.1:{port}', ray_env(tmp)
    finally:
        for server in reversed(servers):
            server.stop()
        assert not any(server.alive() for server in servers)


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    server = start_mlflow_server(tmp_path, port)
    try:
        yield server, port
    finally:
        server.stop()
        assert not server.alive()


def write_suite(tmp_path, name, epochs):
    path = tmp_path / f'{name}.yaml'
    path.write_text(SUITE.format(epochs=epochs))
    return str(path)


def suite_cmd(suite, address, uri, tmp_path, *extra):
    return [sys.executable, '-m', 'prm_rga.cli', 'suite', 'run', suite, '--address', address,
            '--tracking-uri', uri, '--storage-path', str(tmp_path / 'tune'),
            '--work-dir', str(tmp_path / 'work'), '--flush-interval', '1', *extra]


def trial_runs(client, suite):
    experiment = client.get_experiment_by_name(suite)
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    return {r.data.tags['trial']: r for r in runs if 'mlflow.parentRunId' in r.data.tags}


def test_suite_on_a_ray_cluster_with_a_tracking_server(tmp_path, synth, ray_cluster,
                                                       mlflow_server):
    address, env = ray_cluster
    _, port = mlflow_server
    uri = f'http://127.0.0.1:{port}'
    suite = write_suite(tmp_path, 'cluster2', epochs=1)
    proc = subprocess.run(suite_cmd(suite, address, uri, tmp_path), capture_output=True,
                          text=True, env=dict(env, PRM_RGA_SYNTH=synth), timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    client = MlflowClient(uri)
    runs = trial_runs(client, 'cluster2')
    assert sorted(runs) == ['lambda0=1;seed=0', 'lambda0=7;seed=0']
    for run in runs.values():
        assert run.info.status == 'FINISHED'
        assert {'train/loss', 'val/bbox_mAP'} <= set(run.data.metrics)
        assert run.info.artifact_uri.startswith('mlflow-artifacts:')  # proxied by the server
        local = client.download_artifacts(run.info.run_id, 'config.py', str(tmp_path / run.info.run_id))
        assert 'RGAOptimWrapper' in open(local).read() or run.data.params['lambda0'] == '1'
    assert len({run.data.tags['node_id'] for run in runs.values()}) == 2  # both nodes used
    assert all(run.data.tags['node'] for run in runs.values())


def test_tracking_server_restarted_mid_trial(tmp_path, synth, ray_cluster, mlflow_server):
    """The server goes away while a trial logs and comes back on the same port and store: the
    suite completes (or completes on --resume) with every metric point exactly once."""
    address, env = ray_cluster
    server, port = mlflow_server
    uri = f'http://127.0.0.1:{port}'
    epochs = 8  # 16 iterations of 8 images, logged every iteration
    suite = write_suite(tmp_path, 'restart', epochs=epochs)
    cmd = suite_cmd(suite, address, uri, tmp_path, '--max-concurrent', '1', '--seeds', '0')
    env = dict(env, PRM_RGA_SYNTH=synth)
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env)
    client = MlflowClient(uri)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for the first trial's first points
        runs = trial_runs(client, 'restart')
        if any('train/loss' in r.data.metrics for r in runs.values()):
            break
        time.sleep(1)
    else:
        driver.kill()
        pytest.fail('no metrics arrived:\n' + driver.communicate()[0][-3000:])
    server.stop()
    time.sleep(3)
    server2 = start_mlflow_server(tmp_path, port)  # same store and artifacts folder
    try:
        out = driver.communicate(timeout=600)[0]
        if driver.returncode != 0:  # trials that lost the server end FAILED: resume reruns them
            resumed = subprocess.run(cmd + ['--resume'], capture_output=True, text=True,
                                     env=env, timeout=600)
            out += resumed.stdout + resumed.stderr
            assert resumed.returncode == 0, out[-4000:]
        runs = trial_runs(client, 'restart')
        assert sorted(runs) == ['lambda0=1;seed=0', 'lambda0=7;seed=0'], out[-3000:]
        iterations = epochs * 2
        for run in runs.values():
            assert run.info.status == 'FINISHED', out[-3000:]
            steps = [m.step for m in client.get_metric_history(run.info.run_id, 'train/loss')]
            assert sorted(steps) == list(range(1, iterations + 1)), (run.data.tags['trial'], steps)
    finally:
        server2.stop()
        assert not server2.alive()
