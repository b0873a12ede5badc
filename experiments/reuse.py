"""Reuse by content: a trial whose ``config_hash`` (experiments.suites.config_hash: everything
that decides its result) matches a FINISHED trial run anywhere in the tracking store is not
trained again. The launch records it as a child run of its own, FINISHED at once, tagged
``reused_from`` with the source run's id; it is never handed to Ray Tune. Readers (``suite
status``, the report) follow the tag to the source, so a source reused by many suites is
counted once (docs/mlflow-schema.md)."""
from experiments import tracking

REUSED_FROM = 'reused_from'  # on a reuse record: the run id of the run that trained the trial


def experiment_ids(client) -> list:
    """Every active experiment of the store, however many pages."""
    ids, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        ids += [e.experiment_id for e in page]
        token = page.token
        if not token:
            return ids


def find_source(client, config_hash: str, experiments: list):
    """The first FINISHED trial run that trained CONFIG_HASH, or None. Trial runs only: not a
    reuse record, not a run trained again with `prm-rga train --run` (no parent: its config
    may differ from its params')."""
    if not experiments:
        return None
    runs = tracking.search_runs(
        client, experiments, max_results=1,
        filter_string=f'params.config_hash = {tracking.quote(config_hash)} '
        "and attributes.status = 'FINISHED' and tags.`mlflow.parentRunId` IS NOT NULL "
        f'and tags.{REUSED_FROM} IS NULL')
    return runs[0] if runs else None


def find_sources(client, trials) -> dict:
    """trial name -> the run to reuse for it, for the trials that have one."""
    experiments = experiment_ids(client)
    found = {}
    for trial in trials:
        source = find_source(client, trial.params['config_hash'], experiments)
        if source is not None:
            found[trial.name] = source
    return found


def runs_by_id(client, run_ids) -> dict:
    """run id -> run, in any experiment (the sources of reuse records), a page of ids a call."""
    run_ids, found = sorted(set(run_ids)), {}
    experiments = experiment_ids(client) if run_ids else []
    for i in range(0, len(run_ids), 100):
        ids = ', '.join(tracking.quote(r) for r in run_ids[i:i + 100])
        for run in tracking.search_runs(client, experiments,
                                        filter_string=f'attributes.run_id IN ({ids})'):
            found[run.info.run_id] = run
    return found


def resolve(client, runs: list) -> list:
    """RUNS with every reuse record replaced by its source run (records whose source is gone
    are dropped), each run once."""
    sources = runs_by_id(client, [r.data.tags[REUSED_FROM] for r in runs
                                  if REUSED_FROM in r.data.tags])
    out = {}
    for run in runs:
        source = run.data.tags.get(REUSED_FROM)
        run = sources.get(source) if source else run
        if run is not None:
            out.setdefault(run.info.run_id, run)
    return list(out.values())
