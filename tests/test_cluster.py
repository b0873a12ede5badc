"""Cluster mode, as a lab runs it: a Ray head started with `ray start --head --block`, a second
Ray node joined with `ray start --address`, and an `mlflow server` with proxied artifacts, each
in its own temporary directory on 127.0.0.1; `prm-rga suite run --address --tracking-uri` runs a
2-trial tiny suite against them. The servers are stopped by their process ids (process groups)
at the end, also when a test fails."""
import contextlib
import json
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
from mlflow import MlflowClient

from conftest import tiny_scale_yaml
from prm_rga_cli import main

TESTS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TESTS)
BIN = osp.dirname(sys.executable)
# Ray 2.60 turns token authentication on when ~/.ray/auth_token exists; the test cluster and
# its driver must not depend on the home directory
NO_RAY_TOKEN = {'RAY_AUTH_MODE': 'disabled'}
# `mlflow server` also starts a job runner and seven Huey consumers (MLflow's GenAI scorer and
# prompt jobs), eight processes importing MLflow for nothing a tracking server does here
TRACKING_ONLY = {'MLFLOW_SERVER_ENABLE_JOB_EXECUTION': 'false'}

SUITE_YAML = """
description: cluster test
analysis: [table4, fig3]
variants:
  - {}
  - {lambda0: 7}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(check, what: str, timeout: float = 300) -> None:
    """Poll CHECK until it is true; the bound is generous, for a loaded 2-core machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f'{what} did not come up in {timeout:.0f} s')


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


class Servers:
    """Processes started by the test, each in its own process group, stopped by group id."""

    def __init__(self, root: str):
        self.root, self.procs, self.env = root, {}, dict(
            os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]),
            **NO_RAY_TOKEN, **TRACKING_ONLY)

    def start(self, name: str, cmd: list) -> subprocess.Popen:
        log = open(osp.join(self.root, f'{name}.log'), 'w')
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, cwd=self.root,
                                            start_new_session=True)
        return self.procs[name]

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=20)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)

    def start_mlflow(self, port: int) -> None:
        self.start('mlflow', [
            osp.join(BIN, 'mlflow'), 'server', '--host', '127.0.0.1', '--port', str(port),
            '--backend-store-uri', f'sqlite:///{self.root}/mlflow/mlflow.db',
            '--artifacts-destination', f'{self.root}/mlflow/artifacts', '--workers', '1'])
        wait_for(lambda: answers(f'http://127.0.0.1:{port}/health'), 'mlflow server')


@contextlib.contextmanager
def ray_auth_disabled():
    """RAY_AUTH_MODE=disabled in the environment (the servers and drivers the tests start) and
    in this process's copy of Ray's config, which Ray reads from the environment only now and
    then: a driver joining a cluster takes it, a private `ray.init` only when RAY_AUTH_MODE is
    unset. Both restored at the end; else a later private Ray in this process starts its head
    with the environment's mode (token, which a private Ray sets for good) and a driver that
    still says disabled, which that head refuses ("Failed to start GCS ... InvalidAuthToken")."""
    from ray._raylet import AuthenticationTokenLoader, Config
    mp = pytest.MonkeyPatch()
    try:
        for key, value in NO_RAY_TOKEN.items():
            mp.setenv(key, value)
        Config.initialize('')
        yield
    finally:
        mp.undo()
        Config.initialize('')  # before the token cache, as Ray's own tests reset them
        AuthenticationTokenLoader.instance().reset_cache()


@pytest.fixture(scope='module')
def cluster():
    # short paths: Ray's unix sockets live under --temp-dir
    root = tempfile.mkdtemp(prefix='rc', dir='/tmp')
    os.makedirs(osp.join(root, 'mlflow'))
    servers = Servers(root)
    ray_port, mlflow_port = free_port(), free_port()
    with contextlib.ExitStack() as stack:  # undone last to first, also when a test fails
        stack.enter_context(ray_auth_disabled())
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        stack.callback(servers.stop_all)
        common = ['--block', '--num-cpus=1', '--num-gpus=0', '--disable-usage-stats',
                  '--node-ip-address=127.0.0.1']
        servers.start('ray-head', [osp.join(BIN, 'ray'), 'start', '--head', f'--port={ray_port}',
                                   '--include-dashboard=false', f'--temp-dir={root}/ray', *common])
        wait_for(lambda: socket.socket().connect_ex(('127.0.0.1', ray_port)) == 0, 'ray head')
        servers.start('ray-worker', [osp.join(BIN, 'ray'), 'start',
                                     f'--address=127.0.0.1:{ray_port}', *common])
        servers.start_mlflow(mlflow_port)
        yield servers, f'127.0.0.1:{ray_port}', f'http://127.0.0.1:{mlflow_port}', root


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    from prm_rga.datasets import make_synth
    root = tmp_path_factory.mktemp('synth')
    make_synth(root, seed=0, num_train=16, num_val=8, image_size=128)
    return str(root)


def run_cli(synth: str, *argv) -> tuple:
    """`prm-rga ARGV` as a user runs it: one driver process per command."""
    env = dict(os.environ, PRM_RGA_SYNTH=synth, **NO_RAY_TOKEN,
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    done = subprocess.run([sys.executable, '-m', 'prm_rga_cli', *argv], env=env,
                          capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr[-5000:]


def suite_file(tmp_path, epochs: int) -> str:
    path = tmp_path / 'cluster_test.yaml'
    path.write_text(SUITE_YAML + tiny_scale_yaml(epochs))
    return str(path)


def wait_for_nodes(address: str, count: int) -> None:
    import ray
    ray.init(address=address, logging_level='warning')
    try:
        wait_for(lambda: len([n for n in ray.nodes() if n['Alive']]) >= count, 'ray nodes')
    finally:
        ray.shutdown()


def rest(uri: str, endpoint: str, body: dict = None) -> dict:
    """A call to the tracking server's REST API, as the MLflow UI makes it."""
    request = urllib.request.Request(
        f'{uri}/api/2.0/mlflow/{endpoint}', headers={'Content-Type': 'application/json'},
        data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def ui_pages_explain_themselves(uri: str, suite_path: str) -> None:
    """The experiment's description says what the suite reproduces; the parent run's, how it
    was launched and from which commit; each child run's, its launch and the report."""
    experiment = rest(uri, 'experiments/get-by-name?experiment_name=cluster_test')['experiment']
    note = {t['key']: t['value'] for t in experiment['tags']}['mlflow.note.content']
    assert note.startswith('cluster test') and 'Reproduces Table 4, Fig. 3 of the paper' in note
    runs = rest(uri, 'runs/search', {'experiment_ids': [experiment['experiment_id']]})['runs']
    tags = {r['info']['run_id']: {t['key']: t['value'] for t in r['data']['tags']} for r in runs}
    (parent, ) = [r for r in runs if 'mlflow.parentRunId' not in tags[r['info']['run_id']]]
    parent_tags = tags[parent['info']['run_id']]
    commit = subprocess.run(['git', '-C', ROOT, 'rev-parse', 'HEAD'], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert parent_tags['mlflow.source.git.commit'].startswith(commit)
    assert f'`prm-rga suite run {suite_path} --address' in parent_tags['mlflow.note.content']
    assert commit in parent_tags['mlflow.note.content']
    link = f'(#/experiments/{experiment["experiment_id"]}/runs/{parent["info"]["run_id"]})'
    for run in runs:
        if run is parent:
            continue
        run_tags = tags[run['info']['run_id']]
        assert run['info']['run_name'] == run_tags['trial']
        assert {'lambda0', 'seed', 'config_hash'} <= {p['key'] for p in run['data']['params']}
        assert link in run_tags['mlflow.note.content']
        assert '`prm-rga report cluster_test`' in run_tags['mlflow.note.content']


def test_bad_cluster_input_fails_fast_without_runs(cluster, synth, tmp_path, monkeypatch,
                                                   capsys):
    servers, address, uri, root = cluster
    monkeypatch.setenv('PRM_RGA_SYNTH', synth)
    path = suite_file(tmp_path, 1)
    gpu = tmp_path / 'gpu_test.yaml'
    gpu.write_text(SUITE_YAML + tiny_scale_yaml(gpus=1))
    client = MlflowClient(uri)
    before = client.search_experiments()
    assert main(['suite', 'run', path, '--address', f'127.0.0.1:{free_port()}',
                 '--tracking-uri', uri]) == 2
    assert 'no Ray head answers there' in capsys.readouterr().err
    assert main(['suite', 'run', path, '--address', address,
                 '--tracking-uri', f'http://127.0.0.1:{free_port()}']) == 2
    assert 'no MLflow tracking server answers there' in capsys.readouterr().err
    # --no-reuse: the first test's runs have these configs (resources aside)
    assert main(['suite', 'run', str(gpu), '--address', address, '--tracking-uri', uri,
                 '--no-reuse']) == 2
    err = capsys.readouterr().err
    assert 'asks for 1 CPU, 1 GPU, more than any node' in err and '{1 CPU}' in err, err
    assert [e.name for e in client.search_experiments()] == [e.name for e in before]


def test_suite_on_a_ray_cluster_through_a_tracking_server_restart(cluster, synth, tmp_path):
    """A 2-trial suite on the two 1-CPU nodes, tracked on the server, which goes away for a
    while during training and comes back on the same port: the trials finish, one on each
    node, each once, with every metric point exactly once, artifacts proxied by the server,
    and the UI pages explain the runs."""
    import threading
    servers, address, uri, root = cluster
    wait_for_nodes(address, 2)
    path = suite_file(tmp_path, 4)
    port = int(uri.rsplit(':', 1)[1])
    client = MlflowClient(uri)
    outage = {}

    def restart_when_training():
        def training():
            experiment = client.get_experiment_by_name('cluster_test')
            runs = client.search_runs([experiment.experiment_id]) if experiment else []
            return any('train/loss' in r.data.metrics for r in runs
                       if r.info.status == 'RUNNING' and 'mlflow.parentRunId' in r.data.tags)
        wait_for(training, 'a training trial')
        servers.stop('mlflow')
        outage['stopped'] = time.monotonic()
        time.sleep(8)
        servers.start_mlflow(port)
        outage['restarted'] = time.monotonic()

    thread = threading.Thread(target=restart_when_training)
    thread.start()
    code, out = run_cli(synth, 'suite', 'run', path, '--address', address, '--tracking-uri', uri,
                        '--storage-path', str(tmp_path / 'tune'), '--work-dir',
                        str(tmp_path / 'work'), '--flush-interval', '1', '--calibrate-iters', '0')
    thread.join()
    assert 'restarted' in outage
    assert code == 0, out
    experiment = client.get_experiment_by_name('cluster_test')
    parent = client.search_runs([experiment.experiment_id], max_results=1,
                                order_by=['attributes.start_time DESC'],
                                filter_string="tags.tune_experiment LIKE '%'")[0]
    kids = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(r.data.tags['trial'] for r in kids) == ['lambda0=1;seed=0', 'lambda0=7;seed=0']
    for run in kids:
        assert run.info.status == 'FINISHED'
        steps = [m.step for m in client.get_metric_history(run.info.run_id, 'train/loss')]
        assert steps == list(range(1, 9)), steps  # 4 epochs of 2 iterations, each once
        steps = [m.step for m in client.get_metric_history(run.info.run_id, 'val/bbox_mAP')]
        assert steps == [1, 2, 3, 4]
        assert run.data.tags['node'] and run.data.tags['node_id']
        assert run.info.artifact_uri.startswith('mlflow-artifacts:')  # proxied by the server
        local = client.download_artifacts(run.info.run_id, 'config.py', str(tmp_path))
        assert 'RGAOptimWrapper' in open(local).read() or run.data.params['lambda0'] == '1'
    # one trial per 1-CPU node: both nodes trained
    assert len({run.data.tags['node_id'] for run in kids}) == 2
    ui_pages_explain_themselves(uri, path)
