"""`prm-rga ui`: the MLflow UI on 127.0.0.1 over the local store, so the runs of the embedded
default can be browsed without knowing where they are kept (the command is declared in
experiments.cli)."""
import os.path as osp
import socket
import subprocess
import sys

from experiments import tracking
from prm_rga_errors import InputError


def ui_command(args, host: str = '127.0.0.1') -> list:
    """The `mlflow ui` command line; InputError for a store it cannot serve or a port it cannot
    listen on (mlflow would fail after starting, with a traceback)."""
    uri = args.tracking_uri or tracking.default_tracking_uri()
    if uri.startswith(('http://', 'https://')):
        raise InputError(f'tracking URI {uri} is a tracking server, which serves the MLflow UI '
                         'itself: open it in a browser')
    if uri.startswith('sqlite:///'):
        if not osp.isfile(uri[len('sqlite:///'):]):
            raise InputError(f'no MLflow store at {uri}: run a suite first (`prm-rga suite run '
                             'quick`) or name one with --tracking-uri')
        tracking.prepare_sqlite_store(uri[len('sqlite:///'):])  # the UI refuses an old schema
    with socket.socket() as s:
        try:
            s.bind((host, args.port))
        except (OSError, OverflowError) as err:
            raise InputError(f'--port {args.port}: cannot serve on {host}:{args.port} '
                             f'({getattr(err, "strerror", None) or err}); choose another '
                             'port') from None
    return [sys.executable, '-m', 'mlflow', 'ui', '--backend-store-uri', uri,
            '--host', host, '--port', str(args.port)]


def ui(args) -> int:
    command = ui_command(args)
    print(f'MLflow UI: http://127.0.0.1:{args.port}  (store {command[5]}; Ctrl-C stops it)',
          flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0

