"""`prm-rga dashboard`, declared without the analysis stack (it loads when the command runs, in
`dashboards.dashboard`)."""
from analysis.cli import add_arguments


def add_commands(subparsers):
    p = subparsers.add_parser(
        'dashboard', help='one static HTML page with every figure, table and claim check',
        description='Build the report of `prm-rga report` and a single static HTML page of it '
        '(figures embedded) whose table rows link to their runs in the MLflow UI.')
    add_arguments(p)
    p.add_argument('--mlflow-ui', help='base URL of the MLflow UI for run links (default: the '
                   'tracking server, or http://127.0.0.1:5000 for a local store)')
    p.set_defaults(func='dashboards.dashboard:command')
