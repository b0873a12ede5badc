"""`prm-rga test --run RUN_ID` and `prm-rga train --run RUN_ID`: a tracked run's model evaluated
again, or its config trained again into a new run, from what the tracking store holds (the
run's `config.py` and `checkpoint.pth`, docs/mlflow-schema.md), on any machine that reaches the
store; nothing of the machine the run trained on is needed but the data at the same paths."""
import os.path as osp

from mlflow import MlflowClient
from mlflow.entities import Param
from mlflow.exceptions import MlflowException

from experiments import notes, tracking
from prm_rga_errors import InputError


def open_run(uri: str, run_id: str):
    """The client and the run, or an InputError naming the store or the run."""
    if uri.startswith('sqlite:///') and not osp.isfile(uri[len('sqlite:///'):]):
        raise InputError(f'tracking URI {uri}: no MLflow store there (no such file); give the '
                         "store the run is in with --tracking-uri")
    tracking.check_tracking_uri(uri)
    client = MlflowClient(uri)
    try:
        return client, client.get_run(run_id)
    except MlflowException as err:
        if err.error_code == 'RESOURCE_DOES_NOT_EXIST':
            raise InputError(f'run {run_id}: no such run in {uri}') from err
        raise InputError(f'run {run_id} in {uri}: {err.message}') from err


def same_threads(run) -> None:
    """Torch computes on CPU with as many threads as the run did: float sums in the same order,
    so the same weights give the same detections and the same seed the same training."""
    import torch
    threads = run.data.tags.get(tracking.TORCH_THREADS)
    if threads and int(threads) != torch.get_num_threads():
        torch.set_num_threads(int(threads))
        print(f'torch CPU threads: {threads}, as run {run.info.run_id} had')


def fetch(client, run, path: str, folder: str) -> str:
    """Downloads the run's artifact PATH to FOLDER/PATH (an ensemble's members' checkpoints
    apart); an InputError says what the run lacks."""
    parent = osp.dirname(path)
    if path not in {a.path for a in client.list_artifacts(run.info.run_id, parent or None)}:
        why = (' (a paper-scale trial logs it only when its suite sets '
               '`scales.paper.log_checkpoint: true`; runs tracked before checkpoints were '
               'logged have none: evaluate its checkpoint from the trial work dir on node '
               f'{run.data.tags.get("node", "?")} with `prm-rga test CONFIG --checkpoint FILE`)'
               if osp.basename(path) == tracking.CHECKPOINT else '')
        raise InputError(f'run {run.info.run_id} ({run.info.run_name}) has no artifact '
                         f'{path}{why}')
    return tracking.download_artifact(client, run.info.run_id, path, folder)


def _fetch_config(client, run, folder: str):
    from prm_rga.train import load_config
    path = fetch(client, run, 'config.py', folder)
    return path, load_config(path)


def test(args) -> int:
    """Evaluates the run's model with its config (``--test-head``, ``--cfg-options`` as for a
    config file) and prints each metric beside the value the run logged last."""
    from prm_rga.train import evaluate
    client, run = open_run(args.tracking_uri or tracking.default_tracking_uri(), args.run)
    args.work_dir = args.work_dir or osp.join('work_dirs', f'test-{run.info.run_id}')
    folder = osp.join(args.work_dir, 'run')
    args.config, cfg = _fetch_config(client, run, folder)
    if cfg.model.type == 'ProposalEnsemble':  # Table 5's x2: the members' checkpoints
        members = [fetch(client, run, f'm{i}/{tracking.CHECKPOINT}', folder)
                   for i in range(len(cfg.model.detectors))]
        args.cfg_options = {'model.checkpoints': members, **(args.cfg_options or {})}
    else:
        args.checkpoint = args.checkpoint or fetch(client, run, tracking.CHECKPOINT, folder)
    same_threads(run)
    metrics = evaluate(args)
    print(f'run {run.info.run_id} ({run.info.run_name}): metric, this evaluation, logged')
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and key in run.data.metrics:
            print(f'  {key}  {value:.4f}  {run.data.metrics[key]:.4f}')
    return 0


def train(args) -> int:
    """Trains the run's config again (its seed, data and every key its suite set; with
    ``--cfg-options`` applied) into a new run of the same experiment, tagged ``source_run``,
    with the source run's params; the new run gets the metrics, config and checkpoint a trial
    gets."""
    import torch
    from mmengine.runner import find_latest_checkpoint

    from prm_rga.pretrained import check_pretrained
    from prm_rga.train import check_data, train_config
    uri = args.tracking_uri or tracking.default_tracking_uri()
    client, run = open_run(uri, args.run)
    args.work_dir = osp.abspath(args.work_dir or osp.join('work_dirs', f'train-{run.info.run_id}'))
    args.config, cfg = _fetch_config(client, run, osp.join(args.work_dir, 'run'))
    if cfg.model.type == 'ProposalEnsemble':
        raise InputError(f'run {run.info.run_id} ({run.info.run_name}) evaluates detectors '
                         'trained separately (m0/config.py, m1/config.py, ...): train those, '
                         'e.g. `prm-rga train m0/config.py` from its artifacts')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.dump(osp.join(args.work_dir, 'config.py'))
    check_pretrained(cfg)  # bad input is refused before the new run exists
    check_data(cfg)
    same_threads(run)
    new = client.create_run(run.info.experiment_id, run_name=f'{run.info.run_name} (again)', tags={
        'source_run': run.info.run_id, tracking.TORCH_THREADS: str(torch.get_num_threads()),
        notes.NOTE: notes.rerun_note(run, args.command_line, notes.git_commit())})
    new_id = new.info.run_id
    client.log_batch(new_id, params=[Param(k, v) for k, v in run.data.params.items()])
    import experiments.mlflow_backend  # noqa: F401 (registers MlflowRunBackend)
    # mmengine keeps one visualizer per name and process: a name of its own for the backend
    cfg.visualizer.name = f'run-{new_id}'
    cfg.visualizer.vis_backends = list(cfg.visualizer.get('vis_backends') or []) + [
        dict(type='MlflowRunBackend', tracking_uri=uri, run_id=new_id)]
    try:
        train_config(cfg, args)
        tracking.log_run_artifacts(client, new_id, args.work_dir,
                                   checkpoint=find_latest_checkpoint(args.work_dir))
    except BaseException as err:
        tracking.fail_run(client, new_id, f'{type(err).__name__}: {err}')
        raise
    client.set_terminated(new_id, 'FINISHED')
    print(f'run {new_id}: trained again from run {run.info.run_id} ({run.info.run_name}) in '
          f'{uri}, work dir {args.work_dir}')
    return 0
