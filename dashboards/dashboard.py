"""`prm-rga dashboard SUITE...`: the report as one static HTML page (no server, no script):
claim verdicts, every figure (embedded PNG, PDF beside it), every table with links from each
row to its runs in the MLflow UI, and the runs that failed."""
import base64
import html
import os.path as osp
import time

from analysis import claims, paper_values, report, specs, tables

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1400px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.holds { background: #d9f2d9; } .contradicted { background: #f8d7d7; }
.inconclusive { background: #fdf1d0; }
.not-enough-runs { background: #eee; color: #555; }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }
img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #555; font-size: 0.85em; }
"""


def ui_base(tracking_uri: str, mlflow_ui=None) -> str:
    """Where the MLflow UI serves the store: the server itself, or `prm-rga ui`'s local one."""
    if mlflow_ui:
        return mlflow_ui.rstrip('/')
    if tracking_uri.startswith(('http://', 'https://')):
        return tracking_uri.rstrip('/')
    return 'http://127.0.0.1:5000'


def _e(text) -> str:
    return html.escape(str(text))


def _table(header, rows) -> str:
    head = ''.join(f'<th>{_e(h)}</th>' for h in header)
    body = ''.join('<tr>' + ''.join(f'<td>{c}</td>' for c in row) + '</tr>' for row in rows)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render(rep, base: str) -> str:
    runs = rep.runs
    exp_of = dict(zip(runs.frame['run_id'], runs.frame['experiment_id'])) if len(
        runs.frame) else {}
    seed_of = dict(zip(runs.frame['run_id'], runs.frame['seed'])) if len(runs.frame) else {}

    def link(run_id, text=None):
        url = f'{base}/#/experiments/{exp_of[run_id]}/runs/{run_id}'
        return f'<a href="{_e(url)}">{_e(text or run_id[:8])}</a>'

    parts = [f'<h1>prm-rga: {_e(", ".join(runs.suites))}</h1>',
             f'<p class="note">Store <code>{_e(runs.tracking_uri)}</code>, scale '
             f'<code>{_e(runs.scale)}</code>, {len(runs.frame)} trial runs; MLflow UI '
             f'<a href="{_e(base)}">{_e(base)}</a>; built {time.strftime("%Y-%m-%d %H:%M")}. '
             'Paper values in %; ours: mean ± std over seeds (n); Δ = ours − paper; Δ ours [95% CI] '
             'and Δ paper: the effect against the table\'s reference row.</p>']
    if rep.unfinished:
        parts.append(f'<p>Suites without a finished run: {_e(", ".join(rep.unfinished))}</p>')
    if len(rep.problems):
        parts.append('<h2>Runs that did not finish (not counted)</h2>')
        parts.append(_table(['suite', 'trial', 'status', 'error', 'run'], [
            (_e(p.suite), _e(p.trial), _e(p.status), _e(p.error), link(p.run_id))
            for p in rep.problems.itertuples()]))
    parts.append('<h2>Claims</h2>')
    parts.append(_table(['claim', 'source', 'verdict', 'Δ [95% CI]', 'method', 'images',
                         'evidence', 'seeds'], [
        (_e(c.claim), _e(c.source),
         f'<span class="{c.verdict.replace(" ", "-")}">{_e(c.verdict)}</span>',
         _e(claims.interval_text(c)), _e(c.method), _e(c.images), _e(c.evidence), _e(c.seeds))
        for c in rep.claims.itertuples()]))
    parts.append('<h2>Figures</h2>')
    for name, paths in rep.figures.items():
        with open(paths['png'], 'rb') as f:
            data = base64.b64encode(f.read()).decode()
        pdf = osp.relpath(paths['pdf'], rep.out)
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{name}">'
                     f'<figcaption>{name} (<a href="{_e(pdf)}">PDF</a>)</figcaption></figure>')
    parts.append('<h2>Tables</h2>')
    for name, cells in rep.tables.items():
        paper = paper_values.TABLES[name]
        wide = tables.wide(cells, name, rep.absolute)
        run_links = []
        for label, group in cells.groupby(list(paper.labels), sort=False):
            ids = dict.fromkeys(i for ids in group['run_ids'] for i in ids.split())
            run_links.append(' '.join(link(i, f's{seed_of[i]}') for i in ids) or '-')
        parts.append(f'<h3>Table {name[len("table"):]}. {_e(paper.caption)}</h3>')
        parts.append(_table([*wide.columns, 'runs (MLflow)'], [
            (*(_e(v) for v in row), links) for row, links in zip(
                wide.itertuples(False), run_links)]))
        note = specs.TABLES[name].note
        if note:
            parts.append(f'<p class="note">{_e(note)}</p>')
    parts.append('<h2>All runs</h2>')
    frame = runs.frame.sort_values(['suite', 'trial']) if len(runs.frame) else runs.frame
    parts.append(_table(['suite', 'trial', 'seed', 'status', 'AP (%)', 'run'], [
        (_e(r.suite), _e(r.trial), _e(r.seed), _e(r.status),
         _e(f'{100 * r.ap:.1f}') if r.ap == r.ap else '-', link(r.run_id))
        for r in frame.assign(ap=frame.get('val/bbox_mAP', float('nan'))).itertuples()]))
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<title>prm-rga dashboard</title><style>{STYLE}</style></head><body>'
            + '\n'.join(parts) + '</body></html>\n')


def build(suites, tracking_uri=None, out=None, scale=None, mlflow_ui=None, log=print) -> str:
    """Build the report, then OUT/index.html; returns its path."""
    return write(report.build(suites, tracking_uri, out, scale, log), mlflow_ui, log)


def write(rep, mlflow_ui=None, log=print) -> str:
    """REP's OUT/index.html; returns its path."""
    path = osp.join(rep.out, 'index.html')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(render(rep, ui_base(rep.runs.tracking_uri, mlflow_ui)))
    log(f'dashboard: {osp.abspath(path)}')
    return path


def command(args) -> int:
    """The command's handler (declared in dashboards.cli)."""
    rep = report.build(args.suites, args.tracking_uri, args.out, args.scale)
    write(rep, args.mlflow_ui)
    return report.exit_status(rep)
