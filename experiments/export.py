"""`prm-rga suite export|import`: the finished runs of suites as plain files, and back into a
store. A long reproduction outlives the machine its store is on: exported after each suite (130-250
KB a tiny trial), it continues on another machine from the imported runs, which a new
launch reuses by content (experiments.reuse), and the report reads them as it reads any run.

An export folder holds ``experiments.json`` (each suite's description tag) and one folder per
run, ``runs/<run id>/``: ``run.json`` (experiment, name, status, times, params, tags, final
metrics), ``metrics.csv.gz`` (every metric history: key, step, timestamp, value) and
``artifacts/``: every artifact the report reads, which is all of the run's but model weights
(``checkpoint.pth``: a trial's ``prm-rga train|test --run`` needs the original store) and the
per-proposal scores of runs other than Fig. 6's (``scores.npz``, most of a trial's bytes).
Exported runs: the FINISHED trial runs and reuse records of the suites, the sources of those records in other suites, and the launches
(parent runs) of all of them; a trial still training or that failed is left out (the next
launch trains it). A run folder appears complete or not at all (written beside, then renamed); a
finished trial's is written once, a launch's again at every export (its status and notes
change while it runs).

Run ids are the store's own: an imported run gets a new id and keeps the exported one in its
tag ``imported_from``, and every id of the export that a tag names (``mlflow.parentRunId``,
``reused_from``, links in notes) is rewritten to the new id, back again on export. Importing
twice imports nothing twice, nor does importing into the store the export came from; a run
that an interrupted import left unfinished (its tag ``importing`` still set) is deleted and
imported again. A launch exported while it ran is imported
``KILLED``: its driver is not running where the runs are imported.
"""
import csv
import gzip
import io
import json
import os
import os.path as osp
import shutil
import tempfile

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from experiments import reuse, tracking
from prm_rga_errors import InputError

IMPORTED_FROM = 'imported_from'  # on an imported run: its run id in the exported store
IMPORTING = 'importing'  # on a run being imported, removed once all of it is there
EXPERIMENTS = 'experiments.json'
RUN, METRICS, ARTIFACTS = 'run.json', 'metrics.csv.gz', 'artifacts'
PARENT = 'mlflow.parentRunId'
TERMINAL = ('FINISHED', 'FAILED', 'KILLED')
BATCH = 1000  # MLflow's most metrics in one log_batch
SCORES = 'scores.npz'  # per-proposal class scores (prm_rga.eval_dump)


def _is_launch(run) -> bool:
    return PARENT not in run.data.tags


def _rewrite(tags: dict, ids: dict) -> dict:
    """TAGS with every run id of IDS (old -> new) in their values replaced."""
    out = {}
    for key, value in tags.items():
        for old, new in ids.items():
            if old in value:
                value = value.replace(old, new)
        out[key] = value
    return out


# -- export ------------------------------------------------------------------------------------
def _suite_runs(client, suites) -> list:
    """The runs to export: the FINISHED trial runs and reuse records of SUITES, the sources
    those records point to, and the launches of all of them."""
    runs = []
    for suite in suites:
        experiment = client.get_experiment_by_name(suite)
        if experiment is None:
            raise InputError(f'suite export: no runs of suite {suite} in the store')
        runs += tracking.search_runs(
            client, [experiment.experiment_id],
            filter_string=f"attributes.status = 'FINISHED' and tags.`{PARENT}` IS NOT NULL")
    for tag in (reuse.REUSED_FROM, PARENT):
        wanted = {run.data.tags[tag] for run in runs if tag in run.data.tags}
        wanted -= {run.info.run_id for run in runs}
        found = reuse.runs_by_id(client, wanted)
        if wanted - set(found):
            raise InputError(f'suite export: runs of the suites name runs ({tag}) that are not '
                             f'in the store: {", ".join(sorted(wanted - set(found)))}')
        runs += list(found.values())
    return runs


def _history_rows(client, run) -> list:
    rows = []
    for key in sorted(run.data.metrics):
        rows += [(key, m.step, m.timestamp, repr(m.value))
                 for m in client.get_metric_history(run.info.run_id, key)]
    return rows


def _write_run(client, run, experiment: str, ids: dict, folder: str) -> None:
    info = run.info
    doc = dict(run_id=ids.get(info.run_id, info.run_id), experiment=experiment,
               run_name=info.run_name, status=info.status, start_time=info.start_time,
               end_time=info.end_time, params=dict(sorted(run.data.params.items())),
               tags=_rewrite(dict(sorted(run.data.tags.items())), ids),
               metrics=dict(sorted(run.data.metrics.items())))
    doc['tags'].pop(IMPORTED_FROM, None)
    with open(osp.join(folder, RUN), 'w') as f:
        json.dump(doc, f, indent=1)
    text = io.StringIO()
    csv.writer(text, lineterminator='\n').writerows(
        [('key', 'step', 'timestamp', 'value'), *_history_rows(client, run)])
    with gzip.GzipFile(osp.join(folder, METRICS), 'wb', mtime=0) as f:  # same run, same bytes
        f.write(text.getvalue().encode())
    artifacts = osp.join(folder, ARTIFACTS)
    for path in _artifact_files(client, run):
        tracking.download_artifact(client, info.run_id, path, artifacts)


def _reads_scores(run) -> bool:
    """Whether the report reads the run's per-proposal scores: Fig. 6 reads those of the PRM
    row's runs (analysis.measures.head_scores), and no other figure, table or claim does."""
    from analysis import specs
    from analysis.runs import normalize
    params = run.data.params
    if any('.' in key for key in params):  # a config-key variant fills no row
        return False
    have, want = normalize(params), normalize(specs.PRM)
    return all(have[key] == want[key] for key in specs.DEFAULTS)


def _artifact_files(client, run, path: str = None) -> list:
    """The run's artifact files to export: all but model weights, and per-proposal scores
    only where the report reads them (1.3 MB a tiny trial a head, most of its export)."""
    files = []
    for item in client.list_artifacts(run.info.run_id, path):
        name = osp.basename(item.path)
        if item.is_dir:
            files += _artifact_files(client, run, item.path)
        elif name != tracking.CHECKPOINT and (name != SCORES or _reads_scores(run)):
            files.append(item.path)
    return files


def export_runs(client, suites, out: str) -> dict:
    """Writes the suites' runs into OUT (module doc); returns counts of runs written and kept."""
    runs = _suite_runs(client, suites)
    # runs imported here are exported under the id they came with
    ids = {run.info.run_id: run.data.tags[IMPORTED_FROM] for run in runs
           if IMPORTED_FROM in run.data.tags}
    experiments = {e: client.get_experiment(e) for e in {run.info.experiment_id for run in runs}}
    try:
        os.makedirs(osp.join(out, 'runs'), exist_ok=True)
    except OSError as err:
        raise InputError(f'suite export --out {out}: cannot create {osp.join(out, "runs")}: '
                         f'{err}') from err
    counts = dict(written=0, kept=0)
    for run in runs:
        final = osp.join(out, 'runs', ids.get(run.info.run_id, run.info.run_id))
        if osp.isdir(final) and not _is_launch(run):
            counts['kept'] += 1
            continue
        tmp = tempfile.mkdtemp(dir=osp.join(out, 'runs'), prefix='.export-')
        try:
            _write_run(client, run, experiments[run.info.experiment_id].name, ids, tmp)
            if osp.isdir(final):
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        counts['written'] += 1
    path = osp.join(out, EXPERIMENTS)
    notes = _experiment_tags(out) if osp.isfile(path) else {}
    notes.update({e.name: dict(sorted(e.tags.items())) for e in experiments.values()})
    with open(path + '.tmp', 'w') as f:
        json.dump(dict(sorted(notes.items())), f, indent=1)
    os.replace(path + '.tmp', path)
    return counts


# -- import ------------------------------------------------------------------------------------
def _run_ids(folder: str) -> list:
    runs = osp.join(folder, 'runs')
    return sorted(name for name in os.listdir(runs) if not name.startswith('.'))


def _read_run(folder: str, run_id: str) -> dict:
    path = osp.join(folder, 'runs', run_id, RUN)
    try:
        with open(path) as f:
            doc = json.load(f)
        for key in ('run_id', 'experiment', 'status', 'start_time', 'params', 'tags',
                    'metrics'):
            doc[key]  # noqa: B018 (a KeyError names the missing field)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f'{path}: not a run of `prm-rga suite export` ({err!r})') from err
    if doc['run_id'] != run_id:
        raise InputError(f'{path}: run_id {doc["run_id"]} is not its folder\'s name')
    return doc


def _history(folder: str, run_id: str) -> list:
    path = osp.join(folder, 'runs', run_id, METRICS)
    try:
        with gzip.open(path, 'rt') as f:
            rows = list(csv.DictReader(f))
        return [Metric(r['key'], float(r['value']), int(r['timestamp']), int(r['step']))
                for r in rows]
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise InputError(f'{path}: not a metric history of `prm-rga suite export` '
                         f'({err!r})') from err


def _experiment_tags(folder: str) -> dict:
    path = osp.join(folder, EXPERIMENTS)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise InputError(f'{path}: not the experiments of `prm-rga suite export` ({err})') from err


def _imported(client) -> dict:
    """exported run id -> the run imported from it, for every imported run of the store."""
    runs = tracking.search_runs(client, reuse.experiment_ids(client),
                                filter_string=f'tags.{IMPORTED_FROM} LIKE \'%\'')
    return {run.data.tags[IMPORTED_FROM]: run for run in runs}


def import_runs(client, folder: str, tracking_uri: str) -> dict:
    """Creates the runs of the export FOLDER in the store (module doc); returns counts."""
    if not osp.isdir(osp.join(folder, 'runs')):
        raise InputError(f'suite import {folder}: no runs/ folder there (write one with '
                         '`prm-rga suite export SUITE... --out FOLDER`)')
    # all of it read and checked before the store is touched
    docs = [_read_run(folder, run_id) for run_id in _run_ids(folder)]
    histories = {doc['run_id']: _history(folder, doc['run_id']) for doc in docs}
    experiment_tags = _experiment_tags(folder)
    # runs imported before, and those of the store the export was written from
    imported = {**_imported(client), **reuse.runs_by_id(client, [d['run_id'] for d in docs])}
    ids = {old: run.info.run_id for old, run in imported.items()}
    counts, experiment_ids = dict(imported=0, present=0), {}
    # launches first, then trial runs, then reuse records: each names runs made before it
    order = sorted(docs, key=lambda d: (PARENT in d['tags'], reuse.REUSED_FROM in d['tags']))
    for doc in order:
        old = doc['run_id']
        done = imported.get(old)
        if done is not None and IMPORTING not in done.data.tags:
            counts['present'] += 1
            continue
        if done is not None:  # an earlier import stopped half-way through this run
            client.delete_run(done.info.run_id)
        if doc['experiment'] not in experiment_ids:
            experiment_ids[doc['experiment']] = _prepare_experiment(
                client, doc['experiment'], experiment_tags.get(doc['experiment'], {}),
                tracking_uri)
        experiment_id = experiment_ids[doc['experiment']]
        status = doc['status'] if doc['status'] in TERMINAL else 'KILLED'
        ids[old] = _create_run(client, folder, doc, histories[old], experiment_id, status, ids)
        counts['imported'] += 1
    return counts


def _prepare_experiment(client, name: str, tags: dict, tracking_uri: str) -> str:
    """The experiment's id, created if missing, with the exported tags it lacks (a tag set in
    this store stays)."""
    experiment_id = tracking.get_or_create_experiment(client, name, tracking_uri)
    have = client.get_experiment(experiment_id).tags
    for key, value in tags.items():
        if key not in have:
            client.set_experiment_tag(experiment_id, key, value)
    return experiment_id


def _create_run(client, folder: str, doc: dict, history: list, experiment_id: str,
                status: str, ids: dict) -> str:
    """One exported run in the store, tagged ``importing`` until all of it is there; its new
    id."""
    tags = {**_rewrite(doc['tags'], ids), IMPORTED_FROM: doc['run_id'], IMPORTING: 'true'}
    run = client.create_run(experiment_id, start_time=doc['start_time'], tags=tags,
                            run_name=doc.get('run_name'))
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param(k, v) for k, v in doc['params'].items()])
    for i in range(0, len(history), BATCH):
        client.log_batch(run_id, metrics=history[i:i + BATCH])
    artifacts = osp.join(folder, 'runs', doc['run_id'], ARTIFACTS)
    if osp.isdir(artifacts):
        client.log_artifacts(run_id, artifacts)
    client.set_terminated(run_id, status, end_time=doc.get('end_time'))
    client.delete_tag(run_id, IMPORTING)
    return run_id


# -- commands ----------------------------------------------------------------------------------
def _client(args):
    uri = args.tracking_uri or tracking.default_tracking_uri()
    tracking.check_tracking_uri(uri)
    return MlflowClient(uri), uri


def export_command(args) -> int:
    client, uri = _client(args)
    # the experiment of a suite given as a path is the file's name without .yaml
    names = [osp.splitext(osp.basename(name))[0] for name in args.suites]
    counts = export_runs(client, names, args.out)
    print(f'suite export: {counts["written"]} runs written, {counts["kept"]} already in '
          f'{args.out} (from {uri})')
    return 0


def import_command(args) -> int:
    client, uri = _client(args)
    counts = import_runs(client, args.folder, uri)
    print(f'suite import: {counts["imported"]} runs imported into {uri}, {counts["present"]} '
          'there already')
    return 0
