"""Real servers for the cluster tests, started the way a lab starts them: a Ray head and a worker
node with `ray start --block`, an MLflow tracking server with proxied artifacts. Each runs in its
own session (process group) and temporary directory, and `stop()` ends the whole group by its
id, so nothing outlives the test, also when it fails."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Server:

    def __init__(self, args, log_path, env=None):
        self.args, self.log_path = args, log_path
        self.log = open(log_path, 'ab')
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the process leads its own group

    def alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, timeout=10.0) -> None:
        """SIGTERM to the group, SIGKILL to what is left after ``timeout`` seconds."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.time() + timeout
            while self.alive() and time.time() < deadline:
                time.sleep(0.2)
            if not self.alive():
                break
        self.proc.wait(timeout=5)
        self.log.close()

    def tail(self, n=30) -> str:
        with open(self.log_path, 'rb') as f:
            return b''.join(f.readlines()[-n:]).decode(errors='replace')


def wait_until(check, what, server, timeout=90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not server.alive():
            raise RuntimeError(f'{what} exited:\n{server.tail()}')
        if check():
            return
        time.sleep(0.5)
    raise RuntimeError(f'{what} not up after {timeout:.0f} s:\n{server.tail()}')


def ray_env(tmp_path) -> dict:
    """Token authentication as Ray 2.60 enables it by default, with a token of this test."""
    token = tmp_path / 'ray_token'
    if not token.exists():
        token.write_text(os.urandom(32).hex())
    return dict(os.environ, RAY_AUTH_MODE='token', RAY_AUTH_TOKEN_PATH=str(token),
                PATH=f'{BIN}:{os.environ["PATH"]}')


def start_ray_head(tmp_path, port, num_cpus=1) -> Server:
    server = Server([f'{BIN}/ray', 'start', '--head', '--block', '--node-ip-address=127.0.0.1',
                     f'--port={port}', f'--num-cpus={num_cpus}', '--num-gpus=0',
                     '--include-dashboard=false', '--disable-usage-stats',
                     f'--temp-dir={tmp_path}/ray'],
                    tmp_path / 'ray-head.log', env=ray_env(tmp_path))
    wait_until(lambda: b'Ray runtime started' in open(server.log_path, 'rb').read(),
               'ray head', server)
    return server


def start_ray_worker(tmp_path, port, num_cpus=1) -> Server:
    server = Server([f'{BIN}/ray', 'start', '--block', f'--address=127.0.0.1:{port}',
                     '--node-ip-address=127.0.0.1', f'--num-cpus={num_cpus}', '--num-gpus=0',
                     '--disable-usage-stats'],
                    tmp_path / 'ray-worker.log', env=ray_env(tmp_path))
    wait_until(lambda: b'Ray runtime started' in open(server.log_path, 'rb').read(),
               'ray worker', server)
    return server


def start_mlflow_server(tmp_path, port) -> Server:
    """`mlflow server` with a SQLite backend and artifacts proxied by the server."""
    server = Server([f'{BIN}/mlflow', 'server', '--host', '127.0.0.1', '--port', str(port),
                     '--workers', '1',
                     '--backend-store-uri', f'sqlite:///{tmp_path}/mlflow-server.db',
                     '--artifacts-destination', str(tmp_path / 'mlflow-artifacts')],
                    tmp_path / 'mlflow-server.log')
    wait_until(lambda: _healthy(f'http://127.0.0.1:{port}/health'), 'mlflow server', server)
    return server


def _healthy(url) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False
