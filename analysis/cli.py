"""`prm-rga report`, declared without pandas, matplotlib or MLflow (those load when it runs, in
`analysis.report`); its arguments are shared with `prm-rga dashboard`."""
from analysis import specs


def add_commands(subparsers):
    p = subparsers.add_parser(
        'report', help='figures, tables and claim checks of the paper from MLflow runs',
        description='Regenerate the paper\'s figures (PNG, PDF), Tables 1-8 (Markdown, LaTeX, '
        'CSV) and claim checks from the MLflow runs of the given suites, next to the paper\'s '
        'numbers.')
    add_arguments(p)
    p.set_defaults(func='analysis.report:command')


def add_arguments(p):
    p.add_argument('suites', nargs='+', metavar='SUITE',
                   help=f'suite names (MLflow experiments), e.g. quick table4 fig3; rows of every '
                   f'table are filled from the runs of all of them ({", ".join(specs.TABLES)})')
    p.add_argument('--tracking-uri', help='MLflow tracking URI (default: the local store '
                   'sqlite:///<cwd>/mlruns/mlflow.db, as `prm-rga suite run` writes it)')
    p.add_argument('--out', help='output folder (default: reports/SUITE+SUITE...)')
    p.add_argument('--scale', choices=('tiny', 'paper'),
                   help='runs of this scale only (default: the scale of the latest run)')
