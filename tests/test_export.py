"""`prm-rga suite export|import`: runs moved to another store read back as the same report, keep
their links (launch, reuse source) under new run ids, are reused by a new launch there, and
come out of the new store as the same files."""
import filecmp
import gzip
import io
import json
import os
import os.path as osp

import pandas as pd
import pytest
from mlflow import MlflowClient

from analysis import report
from analysis.runs import Runs
from experiments import export, reuse, tracking
from experiments.launcher import run_suite
from experiments.suites import Suite
from prm_rga_cli import main
from mlflow_store import mlflow_server, write_store
from test_launcher import launch_args
from test_reuse import fake_trial, first_launch


def new_store(path) -> str:
    os.makedirs(path, exist_ok=True)
    return f'sqlite:///{path}/mlflow.db'


def same_tree(a: str, b: str) -> list:
    """Files that differ between folders A and B, or are in one only."""
    cmp = filecmp.dircmp(a, b)
    out = [osp.join(a, n) for n in cmp.left_only + cmp.right_only + cmp.funny_files]
    out += [osp.join(a, n) for n in cmp.common_files
            if not filecmp.cmp(osp.join(a, n), osp.join(b, n), shallow=False)]
    for name in cmp.common_dirs:
        out += same_tree(osp.join(a, name), osp.join(b, name))
    return out


@pytest.fixture(scope='module')
def store(tmp_path_factory):
    """tests/mlflow_store.py's store without its FAILED run (not exported: the next launch
    trains it; test_reuse_links_survive_the_move shows it left out)."""
    return write_store(str(tmp_path_factory.mktemp('mlflow')), broken=None)


@pytest.fixture(scope='module')
def moved(store, tmp_path_factory):
    """The store's suites exported, imported into a new store, exported again."""
    root = tmp_path_factory.mktemp('moved')
    first, again = str(root / 'export'), str(root / 'again')
    export.export_runs(MlflowClient(store['uri']), store['suites'], first)
    uri = new_store(root / 'store')
    tracking.check_tracking_uri(uri)
    counts = export.import_runs(MlflowClient(uri), first, uri)
    export.export_runs(MlflowClient(uri), store['suites'], again)
    return dict(uri=uri, export=first, again=again, counts=counts, root=root,
                source=store['uri'])


def test_the_moved_runs_give_the_same_report(store, moved):
    built = {}
    for name, uri in (('before', store['uri']), ('after', moved['uri'])):
        out = str(moved['root'] / f'report-{name}')
        built[name] = report.build(store['suites'], uri, out, log=lambda m: None)
    frames = {name: b.runs.frame for name, b in built.items()}
    assert len(frames['after']) == len(frames['before']) > 20
    new_ids = set(frames['after']['run_id']) | set(frames['after']['launch'])
    assert not new_ids & (set(frames['before']['run_id']) | set(frames['before']['launch']))
    # the files the report writes, with the new store's run ids read as the ones exported
    old_id = {run.info.run_id: old for old, run in export._imported(
        MlflowClient(moved['uri'])).items()}
    names = [osp.join('tables', f) for f in os.listdir(osp.join(built['before'].out, 'tables'))
             if f.endswith(('.csv', '.md'))] + ['claims.csv', 'runs.csv']
    for name in names:
        before, after = (open(osp.join(b.out, name)).read() for b in built.values())
        for new, old in old_id.items():
            after = after.replace(new, old)
        if name == 'runs.csv':  # experiment ids are the store's own too
            before, after = (pd.read_csv(io.StringIO(t)).drop(columns='experiment_id')
                             for t in (before, after))
            pd.testing.assert_frame_equal(after, before)
        else:
            assert after == before, name


def test_a_second_export_of_the_moved_runs_is_the_first_byte_for_byte(moved):
    assert moved['counts']['imported'] == len(os.listdir(osp.join(moved['export'], 'runs')))
    assert same_tree(moved['export'], moved['again']) == []
    # per-proposal scores only of the runs Fig. 6 reads (the claims' equality shows it reads
    # them there), every other artifact of every run but the weights
    with_scores = 0
    for run in os.listdir(osp.join(moved['export'], 'runs')):
        folder = osp.join(moved['export'], 'runs', run)
        params = json.load(open(osp.join(folder, export.RUN)))['params']
        artifacts = set(os.listdir(osp.join(folder, 'artifacts'))) if params else set()
        prm_row = params.get('ratios') == '1:1,1:9' and params.get('lambda0') == '1.0' and all(
            params.get(k, v) == v for k, v in dict(ensemble='none', schedule='1x').items())
        assert artifacts == ({'config.py', 'rpn_pos_vs_gt.csv', 'scores.npz'} if prm_row else
                             {'config.py', 'rpn_pos_vs_gt.csv'} if params else set()), params
        with_scores += prm_row
    assert with_scores == 3  # quick's PRM row, seeds 0, 1, 2
    # histories are there in full, not just the final values: every trial run's (a launch
    # and a reuse record log none)
    for run in os.listdir(osp.join(moved['export'], 'runs')):
        folder = osp.join(moved['export'], 'runs', run)
        if json.load(open(osp.join(folder, export.RUN)))['metrics']:
            with gzip.open(osp.join(folder, export.METRICS), 'rt') as f:
                assert len(f.readlines()) > 60, run


def test_import_twice_imports_nothing_twice_and_redoes_an_interrupted_run(moved):
    client = MlflowClient(moved['uri'])
    before = export._imported(client)
    assert export.import_runs(client, moved['export'], moved['uri']) == dict(
        imported=0, present=len(before))
    source = MlflowClient(moved['source'])  # the store it was exported from: all there
    assert export.import_runs(source, moved['export'], moved['source'])['imported'] == 0
    victim = next(run for run in before.values() if 'mlflow.parentRunId' in run.data.tags)
    client.set_tag(victim.info.run_id, export.IMPORTING, 'true')  # as an import cut off there
    assert export.import_runs(client, moved['export'], moved['uri']) == dict(
        imported=1, present=len(before) - 1)
    after = export._imported(client)
    assert set(after) == set(before)
    old = victim.data.tags[export.IMPORTED_FROM]
    redone = after[old]
    assert redone.info.run_id != victim.info.run_id and export.IMPORTING not in redone.data.tags
    assert client.get_run(victim.info.run_id).info.lifecycle_stage == 'deleted'
    assert redone.data.metrics == victim.data.metrics and redone.data.params == victim.data.params


def test_reuse_links_survive_the_move_and_a_new_launch_reuses_the_imported_run(tmp_path,
                                                                              capsys):
    uri, first = first_launch(tmp_path)  # trial a FINISHED, b FAILED, c KILLED in suite first
    shared = [fake_trial('a;seed=0')]
    assert run_suite(Suite('second', '<tests>', '', (), {}), shared,
                     launch_args(tmp_path, tracking_uri=uri)) == 0
    out = str(tmp_path / 'export')
    assert main(['suite', 'export', 'second', '--out', out, '--tracking-uri', uri]) == 0
    # second's launch and reuse record, the source in suite first and first's launch
    docs = {r: json.load(open(osp.join(out, 'runs', r, export.RUN)))
            for r in os.listdir(osp.join(out, 'runs'))}
    assert first['a;seed=0'] in docs and len(docs) == 4
    assert {d['experiment'] for d in docs.values()} == {'first', 'second'}

    moved = new_store(tmp_path / 'elsewhere')
    assert main(['suite', 'import', out, '--tracking-uri', moved]) == 0
    assert '4 runs imported' in capsys.readouterr().out
    client = MlflowClient(moved)
    imported = export._imported(client)
    source, record = imported[first['a;seed=0']], next(
        r for r in imported.values() if reuse.REUSED_FROM in r.data.tags)
    assert record.data.tags[reuse.REUSED_FROM] == source.info.run_id
    launch = imported[docs[first['a;seed=0']]['tags']['mlflow.parentRunId']]
    assert source.data.tags['mlflow.parentRunId'] == launch.info.run_id
    assert not any(first['a;seed=0'] in v for r in (source, record)
                   for k, v in r.data.tags.items() if k != export.IMPORTED_FROM)
    frame = Runs(['second'], moved, cache_dir=str(tmp_path / 'cache')).frame
    assert list(frame['run_id']) == [source.info.run_id]

    capsys.readouterr()
    assert run_suite(Suite('third', '<tests>', '', (), {}), shared,
                     launch_args(tmp_path, tracking_uri=moved)) == 0
    assert '1 reused, 0 handed to Ray Tune' in capsys.readouterr().out


def test_a_broken_export_is_refused_before_the_store_is_touched(moved, tmp_path, capsys):
    broken = str(tmp_path / 'broken')
    os.makedirs(osp.join(broken, 'runs'))
    for name in sorted(os.listdir(osp.join(moved['export'], 'runs')))[:3]:
        os.symlink(osp.join(moved['export'], 'runs', name), osp.join(broken, 'runs', name))
    os.symlink(osp.join(moved['export'], export.EXPERIMENTS), osp.join(broken, export.EXPERIMENTS))
    bad = osp.join(broken, 'runs', 'f' * 32)
    os.makedirs(bad)
    with open(osp.join(bad, export.RUN), 'w') as f:
        f.write('{"run_id": "' + 'f' * 32 + '", "status": ')  # cut off mid-write
    uri = new_store(tmp_path / 'store')
    assert main(['suite', 'import', broken, '--tracking-uri', uri]) == 2
    err = capsys.readouterr().err
    assert osp.join(bad, export.RUN) in err and 'not a run of `prm-rga suite export`' in err
    client = MlflowClient(uri)
    assert tracking.search_runs(client, reuse.experiment_ids(client)) == []

    assert main(['suite', 'import', str(tmp_path), '--tracking-uri', uri]) == 2
    assert 'no runs/ folder there' in capsys.readouterr().err
    assert main(['suite', 'export', 'table7', '--out', str(tmp_path / 'x'),
                 '--tracking-uri', moved['uri']]) == 2
    assert 'no runs of suite table7 in the store' in capsys.readouterr().err


def test_through_a_tracking_server_the_same_runs_go_in_and_come_out(moved, tmp_path):
    """A cluster's store: the export imported through an `mlflow server` (REST, proxied
    artifacts) and exported from it again is the same folder, byte for byte."""
    db = new_store(tmp_path / 'server')
    tracking.check_tracking_uri(db)
    with mlflow_server(db, str(tmp_path)) as url:
        client = MlflowClient(url)
        counts = export.import_runs(client, moved['export'], url)
        assert counts['imported'] == len(os.listdir(osp.join(moved['export'], 'runs')))
        again = str(tmp_path / 'again')
        export.export_runs(client, ['quick', 'table4', 'fig2'], again)
    for run in os.listdir(osp.join(again, 'runs')):
        assert same_tree(osp.join(moved['export'], 'runs', run),
                         osp.join(again, 'runs', run)) == [], run
