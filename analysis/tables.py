"""The paper's Tables 1-8 with our runs beside them: per cell the paper's value, ours
(mean ± std over seeds, n) and the difference, as Markdown, LaTeX and CSV.

A cell without finished runs says "not run" (and how many of its runs failed), or "not at tiny
scale" where the scale of the runs has no config for its row (the tiny scale has one backbone:
no suite can fill the ResNeXt rows of Table 2 or any of Table 3); it never shows a number that
was not measured.
"""
import os.path as osp

import numpy as np
import pandas as pd

from analysis import intervals, paper_values, specs
from analysis.runs import normalize, seed_stats
from experiments import suites
from prm_rga_errors import InputError


def build(runs, name: str, boot=None) -> pd.DataFrame:
    """One row per cell: label fields, column, paper value, our seed statistics (percent), the
    seeds and run ids behind them, the unfinished runs that matched, and the cell's effect
    against its reference cell (specs.REFERENCES): ours with its 95% interval and method
    (analysis.intervals; ``boot`` a RecordBootstrap for seeds × images), and the paper's."""
    paper, spec = paper_values.TABLES[name], specs.TABLES[name]
    records, cell_runs = [], {}
    for label, row in spec.rows.items():
        paper_row = dict(zip(paper.columns, paper.rows[label]))
        for column, col in spec.columns.items():
            metric = col.metric if row.metrics is None else row.metrics.get(column)
            rec = dict(zip(paper.labels, label), table=name, column=column,
                       paper=paper_row[column], metric=metric, mean=np.nan, std=np.nan, n=0,
                       runs=0, seeds='', run_ids='', unfinished='', scale='')
            if metric is not None:
                selector = {**row.params, **col.params}
                rec['scale'] = runs.scale if runs.scale and not has_config(
                    selector, runs.scale) else ''  # no run can fill the cell at this scale
                done = runs.select(selector)
                values = done[metric] * 100 if metric in done else pd.Series(np.nan, done.index)
                used = done[values.notna().to_numpy()]
                rec.update(seed_stats(values), seeds=' '.join(str(s) for s in used['seed']),
                           run_ids=' '.join(used['run_id']), runs=len(done))
                cell_runs[label, column] = (used, pd.Series(
                    values[values.notna()].to_numpy(), index=used['seed']), metric)
                other = runs.select(selector, finished=False)
                if len(other):
                    rec['unfinished'] = ' '.join(f'{s.lower()}' for s in other['status'])
            records.append(rec)
    frame = pd.DataFrame.from_records(records)
    frame['diff'] = frame['mean'] - frame['paper']
    effects = [_effect(name, label, column, paper, cell_runs, boot)
               for label, column in zip(frame[list(paper.labels)].itertuples(index=False,
                                                                                   name=None),
                                        frame['column'])]
    return pd.concat([frame, pd.DataFrame.from_records(effects, index=frame.index)], axis=1)


EFFECT_FIELDS = ('paper_effect', 'effect', 'effect_low', 'effect_high', 'effect_method')


def has_config(selector: dict, scale: str) -> bool:
    """Whether SCALE has a config for the selector's detector, dataset and backbone."""
    try:
        suites.base_config(normalize(selector), scale)
    except InputError:
        return False
    return True


def _effect(name, label, column, paper, cell_runs, boot) -> dict:
    """Effect of a cell against its reference cell: the paper's and ours with its interval."""
    out = dict.fromkeys(EFFECT_FIELDS, np.nan)
    out['effect_method'] = ''
    ref = specs.REFERENCES.get(name, lambda *_: None)(label, column)
    if ref is None or ref == (label, column) or ref[0] not in paper.rows:
        return out
    ref_paper = dict(zip(paper.columns, paper.rows[ref[0]]))[ref[1]]
    own = dict(zip(paper.columns, paper.rows[label]))[column]
    if own is not None and ref_paper is not None:
        out['paper_effect'] = own - ref_paper
    if (label, column) not in cell_runs or ref not in cell_runs:
        return out
    (runs_a, a, metric_a), (runs_b, b, metric_b) = cell_runs[label, column], cell_runs[ref]
    if not len(a) or not len(b):
        return out
    iv = intervals.over_seeds(a, b)
    if boot is not None:
        got = boot.compare(runs_a, runs_b, metric_a, metric_b)
        if isinstance(got, intervals.Interval):
            got.delta, iv = iv.delta, got
    out.update(effect=iv.delta, effect_low=iv.low, effect_high=iv.high,
               effect_method=iv.method)
    return out


def digits(name: str) -> int:
    """Decimals of the paper's table (Table 7 reports two)."""
    values = [v for row in paper_values.TABLES[name].rows.values() for v in row if v is not None]
    return 2 if any(abs(round(v, 1) - v) > 1e-9 for v in values) else 1


def ours_text(cell, d=1) -> str:
    if pd.isna(cell['metric']):
        return '-'
    if cell['n'] == 0 and cell['runs']:
        runs = f'{cell["runs"]} run' + ('s' if cell['runs'] > 1 else '')
        return f'not logged ({runs} without {cell["metric"]})'
    if cell['n'] == 0 and cell['scale'] and not cell['unfinished']:
        return f'not at {cell["scale"]} scale'
    if cell['n'] == 0:
        unfinished = cell['unfinished'].split()
        detail = ', '.join(f'{unfinished.count(s)} {s}' for s in sorted(set(unfinished)))
        return f'not run ({detail})' if detail else 'not run'
    std = '' if np.isnan(cell['std']) else f' ± {cell["std"]:.{d}f}'
    return f'{cell["mean"]:.{d}f}{std} (n={cell["n"]})'


def _num(value, d, signed=False) -> str:
    if value is None or np.isnan(value):
        return '-'
    return f'{value:+.{d}f}' if signed else f'{value:.{d}f}'


def effect_text(cell, d=1) -> str:
    """'+1.2 [+0.4, +2.0]': our effect against the reference cell with its 95% interval;
    an interval over the images alone (one seed on a side) says so."""
    if pd.isna(cell.get('effect', np.nan)):
        return '-'
    if pd.isna(cell['effect_low']):
        return f'{cell["effect"]:+.{d}f} (one seed: no interval)'
    text = f'{cell["effect"]:+.{d}f} [{cell["effect_low"]:+.{d}f}, {cell["effect_high"]:+.{d}f}]'
    return text + ' images only' if intervals.NO_VERDICT in cell['effect_method'] else text


def wide(cells: pd.DataFrame, name: str, absolute=True) -> pd.DataFrame:
    """The table as displayed: label columns, then per paper column 'paper', 'ours', 'Δ'
    (ours − paper; only with ``absolute``: a tiny model against COCO numbers says nothing) and,
    for tables with a reference row, 'Δ ours [95% CI]' beside 'Δ paper' (the effect against
    the reference cell, which carries across scales)."""
    paper, d = paper_values.TABLES[name], digits(name)
    with_effects = name in specs.REFERENCES
    rows = []
    for label, group in cells.groupby(list(paper.labels), sort=False):
        row = dict(zip(paper.labels, label))
        for _, cell in group.iterrows():
            c = cell['column']
            row[f'{c} paper'] = _num(cell['paper'], d)
            row[f'{c} ours'] = ours_text(cell, d)
            if absolute:
                row[f'{c} Δ'] = _num(cell['diff'], d, signed=True)
            if with_effects:
                row[f'{c} Δ ours [95% CI]'] = effect_text(cell, d)
                row[f'{c} Δ paper'] = _num(cell.get('paper_effect', np.nan), d, signed=True)
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, name: str) -> str:
    paper = paper_values.TABLES[name]
    lines = [f'**Table {name[len("table"):]}.** {paper.caption}', '',
             '| ' + ' | '.join(table.columns) + ' |',
             '|' + '---|' * len(table.columns)]
    lines += ['| ' + ' | '.join(str(v) for v in row) + ' |' for row in table.itertuples(False)]
    note = specs.TABLES[name].note
    return '\n'.join(lines + ([f'\n{note}'] if note else [])) + '\n'


def latex(table: pd.DataFrame, name: str) -> str:
    caption = paper_values.TABLES[name].caption
    return table.style.hide(axis='index').to_latex(
        caption=f'{caption} (paper, ours: mean $\\pm$ std over seeds, difference)',
        label=f'tab:{name}', hrules=True).replace('±', '$\\pm$').replace('Δ', '$\\Delta$')\
        .replace('λ', '$\\lambda$').replace('✓', '$\\checkmark$')


def write(cells: pd.DataFrame, name: str, out_dir: str, absolute=True) -> dict:
    """Write NAME.md, NAME.tex and NAME.csv (the long form, one line per cell)."""
    table = wide(cells, name, absolute)
    paths = {ext: osp.join(out_dir, f'{name}.{ext}') for ext in ('md', 'tex', 'csv')}
    with open(paths['md'], 'w', encoding='utf-8') as f:
        f.write(markdown(table, name))
    with open(paths['tex'], 'w', encoding='utf-8') as f:
        f.write(latex(table, name))
    cells.to_csv(paths['csv'], index=False)
    return paths
