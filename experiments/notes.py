"""What the MLflow UI shows about a suite without a reader opening our code: Markdown notes
(MLflow's ``mlflow.note.content`` tag, the UI's "Description") on the suite's experiment (what
it reproduces), on each launch's parent run (the command line and the commit) and on each
trial's child run (its launch, and how to get the report that uses it)."""
import os.path as osp
import re
import subprocess

NOTE = 'mlflow.note.content'
GIT_COMMIT = 'mlflow.source.git.commit'  # shown by the UI as the run's source commit
PAPER = 'Delving into the Imbalance of Positive Proposals in Two-stage Object Detection'
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def paper_item(name: str) -> str:
    """'table4' -> 'Table 4', 'fig3' -> 'Fig. 3' (a suite's ``analysis`` entries)."""
    match = re.fullmatch(r'(table|fig)(\d+)', name)
    if match is None:
        return name
    return f'{"Table " if match[1] == "table" else "Fig. "}{match[2]}'


def report_hint(suite: str) -> str:
    return (f'`prm-rga report {suite}` writes the figures, tables and claim checks made from '
            f'these runs next to the paper\'s numbers; `prm-rga dashboard {suite}` makes them '
            'one HTML page whose rows link back to the runs.')


def experiment_note(suite) -> str:
    lines = [' '.join(suite.description.split()) or f'Suite `{suite.name}`.', '']
    if suite.analysis:
        lines += [f'Reproduces {", ".join(map(paper_item, suite.analysis))} of the paper '
                  f'*{PAPER}*.', '']
    lines += [f'Suite file: `{suite.path}`. One parent run per launch of `prm-rga suite run '
              f'{suite.name}`, one child run per trial, named by the trial; a child run\'s '
              'params are the suite\'s axes and `config_hash`.', '', report_hint(suite.name)]
    return '\n'.join(lines)


def _git(root: str, *argv) -> str:
    return subprocess.run(['git', '-C', root, *argv], capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()


def git_commit(root: str = ROOT):
    """HEAD of the checkout the code runs from, with ``-dirty`` when tracked files changed;
    None when it is not a git checkout (e.g. an installed wheel)."""
    try:
        sha = _git(root, 'rev-parse', 'HEAD')
        return sha + ('-dirty' if _git(root, 'status', '--porcelain', '--untracked-files=no')
                      else '')
    except (OSError, subprocess.SubprocessError):
        return None


def at_commit(commit) -> str:
    return f'at commit `{commit}`' if commit else '(not run from a git checkout: no commit)'


def launch_line(command_line: str, commit) -> str:
    return f'`{command_line}` {at_commit(commit)}'


def parent_note(suite, scale: str, num_trials: int, command_line: str, commit) -> str:
    return '\n'.join([
        f'Launch of suite `{suite.name}` at scale `{scale}`: {num_trials} trials, one child run '
        'each.', '', f'Started by {launch_line(command_line, commit)}.', '',
        report_hint(suite.name)])


def resumed_note(note: str, command_line: str, commit) -> str:
    """NOTE (a parent run's, perhaps edited in the UI, or absent) with this resume added."""
    return '\n\n'.join(filter(None, [note, f'Resumed by {launch_line(command_line, commit)}.']))


def child_note(launch, trial_name: str) -> str:
    parent = f'#/experiments/{launch.experiment_id}/runs/{launch.parent_run_id}'
    return '\n'.join([
        f'Trial `{trial_name}` of suite `{launch.suite}` (scale `{launch.scale}`), launch '
        f'[{launch.name}]({parent}).', '', report_hint(launch.suite)])


def reused_note(launch, trial_name: str, source) -> str:
    """The description of a trial's run in a launch that reused SOURCE instead of training."""
    link = f'#/experiments/{source.info.experiment_id}/runs/{source.info.run_id}'
    return '\n'.join([
        child_note(launch, trial_name), '',
        f'Not trained in this launch: reused run [{source.info.run_name}]({link}) of suite '
        f'`{source.data.tags.get("suite")}`, which trained the same config (`config_hash`; tag '
        '`reused_from`). Its metrics, artifacts and model are there.'])


def rerun_note(source, command_line: str, commit) -> str:
    """The description of a run trained again from SOURCE (`prm-rga train --run`)."""
    link = f'#/experiments/{source.info.experiment_id}/runs/{source.info.run_id}'
    return '\n'.join([
        f'Trained again from run [{source.info.run_name}]({link}) (tag `source_run`), by '
        f'{launch_line(command_line, commit)}.', '',
        'Not a trial of a launch: the report and the dashboard leave it out.'])
