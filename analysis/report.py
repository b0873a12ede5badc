"""`prm-rga report SUITE...` (declared in analysis.cli): every figure, table and claim check of
the paper from the runs of the given suites, written to one folder (figures/, tables/, claims.csv,
summary.md, runs.csv, report.md)."""
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass

import pandas as pd

from analysis import paper_values
from prm_rga_errors import InputError


@dataclass
class Report:
    out: str
    runs: object  # analysis.runs.Runs
    tables: dict  # name -> cells frame (tables.build)
    figures: dict  # name -> {'png': path, 'pdf': path}
    claims: pd.DataFrame
    problems: pd.DataFrame  # runs that did not finish, with their error
    unfinished: list  # suites asked for without a finished run (their rows say "not run")
    no_records: dict = None  # run id -> why it has no per-image evaluation record
    absolute: bool = True  # tables show ours − paper (not at the tiny scale)
    gains: pd.Series = None  # run id -> share of its final AP gained in the last quarter
    commit: str = None  # the checkout's commit as the report started (before it wrote anything)


def default_out(suites) -> str:
    return osp.join('reports', '+'.join(suites))


def build(suites, tracking_uri=None, out=None, scale=None, log=print) -> Report:
    """Load the runs, then write tables, figures and claims under OUT; LOG reports progress."""
    from analysis import claims, figures, intervals, measures, tables
    from analysis.runs import Runs
    from experiments import notes
    out = out or default_out(suites)
    start = time.time()
    # read first: the files the report rewrites below are tracked when it is committed (docs/)
    commit = notes.git_commit()
    steps = 3 + len(figures.FIGURES)

    def step(i, what):
        log(f'[{i}/{steps}] {what} ({time.time() - start:.1f} s)')

    step(1, f'loading runs of {", ".join(suites)}')
    runs = Runs(suites, tracking_uri, cache_dir=osp.join(out, '.artifacts'), scale=scale)
    _check_known(runs)
    for sub in ('figures', 'tables'):
        os.makedirs(osp.join(out, sub), exist_ok=True)
    frame = runs.frame
    counts = frame['status'].value_counts() if len(frame) else {}
    log(f'      {len(frame)} trial runs ({", ".join(f"{n} {s.lower()}" for s, n in counts.items())}'
        f'); scale {runs.scale}; store {runs.tracking_uri}')
    unfinished = runs.unfinished()
    for suite in unfinished:
        log(f'      suite {suite}: no finished run in the store (its rows say "not run")')
    cols = [c for c in ('suite', 'trial', 'seed', 'status', 'error', 'run_id') if c in frame]
    problems = frame[frame['status'] != 'FINISHED'][cols] if len(frame) else \
        pd.DataFrame(columns=cols)
    for p in problems.itertuples():
        log(f'      {p.status.lower()} run: {p.suite} / {p.trial} ({p.error or "no error tag"})')
    # one line per run: its params and status, the share of its final AP it gained in the last
    # quarter of training, then its final metrics by name (not in the order the store holds
    # them, so that the same runs write the same file)
    gains = measures.convergence(runs)
    frame = frame.assign(last_quarter_gain=frame['run_id'].map(gains)) if len(frame) else \
        frame.assign(last_quarter_gain=[])
    metrics = sorted(c for c in frame if '/' in c and not c.startswith('train/'))
    frame[[c for c in frame if '/' not in c] + metrics].to_csv(
        osp.join(out, 'runs.csv'), index=False)

    step(2, 'tables 1-8')
    boot = intervals.RecordBootstrap(runs)  # resampled AP of each run, shared with the claims
    absolute = runs.scale != 'tiny'  # ours − paper means nothing for a tiny model
    built = {}
    for name in paper_values.TABLES:
        built[name] = tables.build(runs, name, boot)
        tables.write(built[name], name, osp.join(out, 'tables'), absolute)

    drawn = {}
    for i, name in enumerate(figures.FIGURES, start=3):
        step(i, f'figure {name}')
        drawn[name] = figures.write(runs, name, osp.join(out, 'figures'))

    step(steps, 'claim checks')
    verdicts = claims.check_all(runs, boot)
    verdicts.to_csv(osp.join(out, 'claims.csv'), index=False)
    with open(osp.join(out, 'summary.md'), 'w', encoding='utf-8') as f:
        f.write(claims.summary(verdicts))
    for run_id, why in boot.missing.items():
        log(f'      run {run_id}: {why} (its claims take intervals over seeds only)')
    report = Report(out, runs, built, drawn, verdicts, problems, unfinished, boot.missing,
                    absolute, gains, commit)
    with open(osp.join(out, 'report.md'), 'w', encoding='utf-8') as f:
        f.write(markdown(report))
    log(f'done in {time.time() - start:.1f} s: {osp.abspath(out)}')
    return report


def convergence_text(report: Report) -> str:
    """How many runs were still learning when their schedule ended (runs.csv's
    last_quarter_gain, measures.convergence)."""
    from analysis import measures
    frame = report.runs.frame
    have = frame.assign(gain=frame['run_id'].map(report.gains)).dropna(subset=['gain']) \
        if len(frame) and report.gains is not None else []
    if not len(have):
        return 'No finished run has a validation curve.'
    limit = measures.CONVERGED
    learning = have[have['gain'] > limit].sort_values('gain', ascending=False)
    worst = have.loc[have['gain'].idxmax()]
    crowd = ', AP50 on the synthetic crowd' if (have['dataset'] == 'crowdhuman').any() else ''
    text = (f'Of {len(have)} finished runs with a validation curve, **{len(learning)}** gained '
            f'more than {limit:.0%} of their final AP{crowd} in the last quarter of their '
            'schedule (the convergence criterion of docs/performance.md): median '
            f'{have["gain"].median():.1%}, largest {worst["gain"]:.1%} ({worst["suite"]} / '
            f'{worst["trial"]}).')
    if not len(learning):
        return text + ' By this criterion every comparison here is between trained detectors.'
    return (text + ' A comparison of runs still learning says how far each got, not what the '
            'method does to a trained detector. Still learning:\n\n' + '\n'.join(
                f'- {r.suite} / {r.trial}: {r.gain:+.1%}' for r in learning.itertuples()))


def markdown(report: Report) -> str:
    """Everything in one Markdown page: run summary, claim verdicts, figures, tables."""
    from analysis import claims, tables
    from experiments import notes
    runs = report.runs
    lines = [f'# Report: {", ".join(runs.suites)}', '',
             f'Store `{runs.tracking_uri}`, scale `{runs.scale}`, {len(runs.frame)} trial runs. '
             f'Written by `prm-rga report {" ".join(runs.suites)}`, '
             + notes.at_commit(report.commit) + '.', '']
    if report.unfinished:
        lines += [f'Suites without a finished run: {", ".join(report.unfinished)}.', '']
    launches = runs.launches()
    if launches:
        lines += ['The launches that trained these runs, as their parent runs record them:', '']
        lines += [f'- `{p.info.run_name}` (run {p.info.run_id}): ' + ' '.join(
            line for line in p.data.tags.get(notes.NOTE, '').splitlines()
            if line.startswith(('Started by', 'Resumed by'))) for p in launches]
        lines.append('')
    if len(report.problems):
        lines += ['Runs that did not finish (not counted):', '']
        lines += [f'- {p.suite} / {p.trial}: {p.status}, {p.error or "no error recorded"}'
                  for p in report.problems.itertuples()]
        lines.append('')
    lines += ['## Claims', '', claims.summary(report.claims).split('\n')[0], '',
              'Verdicts from 95% intervals of Δ (docs/analysis.md): **holds** when the interval '
              'lies on the claimed side of the threshold, **contradicted** on the other side, '
              '**inconclusive** when it straddles it.', '',
              '| claim | source | verdict | Δ [95% CI] | method | images | evidence | seeds |',
              '|---|---|---|---|---|---|---|---|']

    cell = claims.cell
    lines += [f'| {cell(c.claim)} | {c.source} | **{c.verdict}** | {claims.interval_text(c)} | '
              f'{cell(c.method)} | {c.images} | {cell(c.evidence)} | {cell(c.seeds)} |'
              for c in report.claims.itertuples()]
    if report.no_records:
        lines += ['', 'Runs without a per-image evaluation record (their claims take intervals '
                  'over seeds only):', '']
        frame = runs.frame.set_index('run_id')
        lines += [f'- {frame.loc[r, "suite"]} / {frame.loc[r, "trial"]} ({r}): {why}'
                  for r, why in report.no_records.items()]
    lines += ['', '## Have the models finished learning?', '', convergence_text(report), '']
    lines += ['## Figures', '']
    lines += [f'![{name}](figures/{name}.png)' for name in report.figures]
    lines += ['', '## Tables', '']
    for name, cells in report.tables.items():
        lines += [tables.markdown(tables.wide(cells, name, report.absolute), name), '']
    return '\n'.join(lines)


def _check_known(runs) -> None:
    """A suite name that is neither one of the project's suites nor an experiment of the store is
    a typo or the wrong store: refused before anything is written."""
    if not runs.missing_suites:
        return
    from experiments.suites import list_suites  # loads mmengine's config: only when needed
    unknown = [suite for suite in runs.missing_suites if suite not in list_suites()]
    if unknown:
        stored = sorted(e.name for e in runs.client.search_experiments() if e.name != 'Default')
        raise InputError(f'no such suite {", ".join(unknown)}: neither a suite of this project '
                         f'({", ".join(list_suites())}) nor an experiment in {runs.tracking_uri} '
                         f'(experiments there: {", ".join(stored) or "none"})')


def exit_status(report: Report) -> int:
    """The command's exit status: 1 when no suite asked for has a finished run, so that a script
    notices a report without results (a failed launch, the wrong --tracking-uri); else 0."""
    if len(report.unfinished) < len(report.runs.suites):
        return 0
    print(f'prm-rga: no finished run of {", ".join(report.runs.suites)} in '
          f'{report.runs.tracking_uri}: the report has no results', file=sys.stderr)
    return 1


def command(args) -> int:
    """The command's handler."""
    return exit_status(build(args.suites, args.tracking_uri, args.out, args.scale))
