"""A fixture MLflow store written with the MLflow client, laid out as the launcher writes suites
(DESIGN.md): experiment = suite, a parent run, child runs with params, metric histories and
artifacts, several seeds, and one broken run (FAILED, no metrics).

The curves, artifacts and subset APs carry the paper's effects; ``sign=-1`` reverses each of
them (positives fall, RGA learns positives slower and shifts negatives' accuracy, the summed
gradient is larger than the sum of norms, the 1:9 head scores higher, more GT gives fewer RPN
positives, subset slopes and PRM's subset gains flip), so that a claim check can be shown to
say no."""
import contextlib
import os
import os.path as osp
import uuid

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from experiments.notes import NOTE
from test_cluster import BIN, Servers, answers, free_port, wait_for

STEPS = 60  # training iterations logged per run
EPOCHS = 3

# (suite, params that vary, seeds, AP in %) ; every other param is logged with its default value,
# except in the 'quick' suite, which logs only the axes it varies (defaults apply).
TRIALS = [
    ('quick', dict(lambda0='1.0', ratios='1:3'), (0, 1, 2), 30.0),
    ('quick', dict(lambda0='7.0', ratios='1:3'), (0, 1, 2), 31.0),
    ('quick', dict(lambda0='1.0', ratios='1:1,1:9'), (0, 1, 2), 31.5),
    ('quick', dict(lambda0='7.0', ratios='1:1,1:9'), (0, 1, 2), 32.0),
    ('table4', dict(lambda0='1.0'), (0, ), 30.1),  # seed 0 of quick's baseline again: counts once
    ('table4', dict(lambda0='7.0', anneal='false'), (0, 1), 30.6),
    ('table4', dict(lambda0='5.0', anneal='true'), (0, ), 30.8),
    ('table1', dict(ratios='1:1'), (0, 1), 30.2),
    ('table1', dict(ratios='1:9'), (0, 1), 29.0),
    ('table8', dict(sampling='hard', ratios='1:1'), (0, ), 28.0),
    ('table8', dict(sampling='hard', ratios='1:3'), (0, ), 29.5),
    ('fig2', dict(ratios='1:5'), (0, ), 29.8),
    ('fig5', dict(detector='mask_rcnn'), (0, ), 31.0),
    ('table5', dict(ratios='1:1,1:9', ensemble='separate'), (0, 1), 30.5),
    # a config-key axis: a variant of the baseline that no paper row describes
    ('table4', {'lambda0': '1.0', 'model.rpn_head.num_convs': '2'}, (3, ), 99.0),
]
BROKEN = ('table4', dict(lambda0='9.0', anneal='true'), 0)  # FAILED, no metrics
FULL = dict(detector='faster_rcnn', backbone='r50', schedule='1x', dataset='coco', ratios='1:3',
            sampling='soft', lambda0='1.0', anneal='true', ensemble='none')


def ratios_of(params):
    return [float(r.split(':')[1]) for r in params.get('ratios', '1:3').split(',')]


def final_metrics(params, seed, ap, sign=1):
    """Final val metrics (fractions, as MLflow holds them)."""
    ap = (ap + 0.3 * seed) / 100
    m = {'val/bbox_mAP': ap, 'val/bbox_mAP_50': ap + 0.2, 'val/bbox_mAP_75': ap + 0.02,
         'val/bbox_mAP_s': ap - 0.1, 'val/bbox_mAP_m': ap}
    if seed % 2:  # no large objects: absent, or pycocotools' -1 in stores written before
        m['val/bbox_mAP_l'] = -1.0
    ks = ratios_of(params)
    k = ks[0]  # single-head runs: fewer positives -> better on sparse, worse on crowded images
    m['val/gt1-3/bbox_mAP'] = ap + sign * 0.004 * k
    m['val/gt8-inf/bbox_mAP'] = ap - sign * 0.004 * k
    if params.get('dataset') == 'crowdhuman':  # CrowdHuman: mMR falls as AP rises
        m.update({'val/mMR': 0.9 - ap, 'val/AP50': ap + 0.5})
    if params.get('ensemble') == 'separate':  # members' own evaluations (docs/mlflow-schema.md)
        return {**m, 'm0/val/bbox_mAP': ap - 0.003, 'm1/val/bbox_mAP': ap - 0.015}
    if len(ks) > 1:
        m.update({'val/h0/bbox_mAP': ap - sign * 0.005, 'val/h1/bbox_mAP': ap - sign * 0.006,
                  'val/gt1-3/bbox_mAP': ap + sign * 0.04, 'val/gt8-inf/bbox_mAP': ap + sign * 0.01})
    return m


def histories(params, seed, steps=STEPS, sign=1):
    rng = np.random.default_rng(seed)
    t = np.arange(steps) * STEPS / steps  # the same curve shape at any length
    rga = float(params.get('lambda0', 1)) > 1
    rise = 1 - np.exp(-t / 15)
    out = {}
    for h, k in enumerate(ratios_of(params)):
        out[f'train/num_pos/h{h}'] = 40 / (1 + k) * (rise if sign > 0 else 1 - rise) + 1
        fast = rga == (sign > 0)
        out[f'train/acc_pos/h{h}'] = 0.9 * (1 - np.exp(-t / (8 if fast else 20)))
        out[f'train/acc_neg/h{h}'] = (0.97 + 0.005 * rng.standard_normal(steps) +
                                      (0.05 if rga and sign < 0 else 0))
        out[f'train/grad_fnorm/h{h}'] = 1 + 0.2 * rng.random(steps)
    out['train/lambda'] = np.full(steps, float(params.get('lambda0', 1)))
    out['train/loss'] = 2 * np.exp(-t / 30)
    if params.get('detector') == 'mask_rcnn':
        out['train/grad_fnorm/bbox'] = 1 + 0.2 * rng.random(steps)
        out['train/grad_fnorm/mask'] = 0.5 + 0.1 * rng.random(steps)
        parts = ('train/grad_fnorm/bbox', 'train/grad_fnorm/mask')
    else:
        parts = ('train/grad_fnorm/h0', 'train/grad_fnorm/h1')
    if parts[1] in out:
        out['train/grad_fnorm/sum'] = (1 - sign * 0.15) * (out[parts[0]] + out[parts[1]])
    return out


def write_artifacts(root, params, seed, sign=1):
    rng = np.random.default_rng(seed)
    os.makedirs(root)
    with open(osp.join(root, 'config.py'), 'w') as f:
        f.write(f'params = {params!r}\n')
    num_gt = rng.integers(1, 15, 40)
    with open(osp.join(root, 'rpn_pos_vs_gt.csv'), 'w') as f:
        f.write('image_id,num_gt,num_pos\n')
        for i, g in enumerate(num_gt):
            f.write(f'{i},{g},{int((g if sign > 0 else 15 - g) * 6 + rng.integers(0, 10))}\n')
    n, c = 500, 5
    arrays = {'label': rng.integers(0, c + 1, n), 'image_id': rng.integers(0, 40, n)}
    for h, k in enumerate(ratios_of(params)):
        logits = rng.standard_normal((n, c + 1))
        logits[:, c] += sign * np.log1p(k)  # more negatives in training -> more background
        p = np.exp(logits)
        arrays[f'h{h}'] = (p / p.sum(1, keepdims=True)).astype(np.float32)
    np.savez(osp.join(root, 'scores.npz'), **arrays)


def write_store(root: str, trials=TRIALS, broken=BROKEN, steps=STEPS, sign=1) -> dict:
    """Write the store under ROOT; return its tracking URI and the logged final metrics per
    (suite, trial name, seed). ``sign=-1`` reverses the built-in effects (module doc)."""
    uri = f'sqlite:///{osp.join(root, "mlflow.db")}'
    client = MlflowClient(uri)
    logged = {}
    suites = sorted({t[0] for t in trials})
    for suite in suites:
        exp = client.create_experiment(suite, artifact_location=osp.join(root, 'artifacts', suite))
        parent = client.create_run(exp, run_name=f'{suite}-tiny-launch', tags={
            'suite': suite, 'scale': 'tiny', NOTE: f'Launch of suite `{suite}`.\n\nStarted by '
            f'`prm-rga suite run {suite}` at commit `c0ffee`.'})
        ours = [(p, s, a) for name, p, s, a in trials if name == suite]
        if broken and broken[0] == suite:
            ours.append((broken[1], (broken[2], ), None))
        for params, seeds, ap in ours:
            for seed in seeds:
                logged_params = dict(params, seed=str(seed))
                if suite != 'quick':
                    logged_params = dict(FULL, **logged_params)
                name = ';'.join(f'{k}={v}' for k, v in {**params, 'seed': seed}.items())
                run = client.create_run(exp, run_name=name, tags={
                    'mlflow.parentRunId': parent.info.run_id, 'suite': suite, 'trial': name,
                    'scale': 'tiny', 'node': 'localhost'})
                rid = run.info.run_id
                client.log_batch(rid, params=[Param(k, str(v)) for k, v in
                                              {**logged_params, 'config_hash': 'abc'}.items()],
                                 tags=[RunTag('mlflow.runName', name)])
                if ap is None:
                    client.set_tag(rid, 'error', 'RuntimeError: CUDA out of memory')
                    client.set_terminated(rid, 'FAILED')
                    continue
                final = final_metrics(params, seed, ap, sign)
                metrics = [Metric(k, float(v[i]), 0, i) for k, v in
                           histories(params, seed, steps, sign).items() for i in range(steps)]
                metrics += [Metric(k, v * (e + 1) / EPOCHS, 0, e + 1)
                            for k, v in final.items() for e in range(EPOCHS)]
                for i in range(0, len(metrics), 1000):
                    client.log_batch(rid, metrics=metrics[i:i + 1000])
                art = osp.join(root, 'staging', rid)
                write_artifacts(art, logged_params, seed, sign)
                client.log_artifacts(rid, art)
                client.set_terminated(rid, 'FINISHED')
                logged[(suite, name, seed)] = final
        client.set_terminated(parent.info.run_id, 'FINISHED')
    return dict(uri=uri, suites=suites, logged=logged)


def write_finished_runs(client, experiment_id: str, runs) -> list:
    """RUNS, ``(name, tags, params, metrics)`` of strings (metrics: key -> value at step 1),
    as FINISHED runs of EXPERIMENT_ID in CLIENT's SQLite store, written in one transaction of
    MLflow's own store models: the rows ``create_run``, ``log_batch`` and ``set_terminated``
    write, without the transaction each of those calls takes (3,000 of them for 1,000 runs,
    most of a minute). Their run ids, oldest first (start times 1 ms apart)."""
    from mlflow.store.tracking.dbmodels.models import (SqlLatestMetric, SqlMetric, SqlParam,
                                                       SqlRun, SqlTag)
    from mlflow.utils.time import get_current_time_millis
    store = client._tracking_client.store
    location = client.get_experiment(experiment_id).artifact_location.rstrip('/')
    start, ids = get_current_time_millis(), []
    with store.ManagedSessionMaker(read_only=False) as session:
        for i, (name, tags, params, metrics) in enumerate(runs):
            run_id = uuid.uuid4().hex
            run = SqlRun(name=name, artifact_uri=f'{location}/{run_id}/artifacts',
                         run_uuid=run_id, experiment_id=int(experiment_id),
                         source_type='UNKNOWN', source_name='', entry_point_name='',
                         user_id='unknown', status='FINISHED', start_time=start + i,
                         end_time=start + i, deleted_time=None, source_version='',
                         lifecycle_stage='active')
            run.tags = [SqlTag(key=k, value=v) for k, v in
                        {'mlflow.runName': name, **tags}.items()]
            run.params = [SqlParam(key=k, value=v) for k, v in params.items()]
            run.metrics = [SqlMetric(key=k, value=v, timestamp=start, step=1, is_nan=False)
                           for k, v in metrics.items()]
            run.latest_metrics = [SqlLatestMetric(key=k, value=v, timestamp=start, step=1,
                                                  is_nan=False) for k, v in metrics.items()]
            session.add(run)
            ids.append(run_id)
    return ids


@contextlib.contextmanager
def mlflow_server(backend_uri: str, root: str):
    """`mlflow server` on BACKEND_URI (what a cluster's tracking URI points at), logging under
    ROOT: its URL. Stopped by its process group; one that never answers /health fails."""
    servers, port = Servers(root), free_port()
    url = f'http://127.0.0.1:{port}'
    try:
        servers.start('mlflow', [osp.join(BIN, 'mlflow'), 'server', '--backend-store-uri',
                                 backend_uri, '--host', '127.0.0.1', '--port', str(port),
                                 '--workers', '1'])
        wait_for(lambda: answers(f'{url}/health'), f'mlflow server on {url}')
        yield url
    finally:
        servers.stop_all()