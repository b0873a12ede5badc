"""The suite estimate's error against the measured wall time (issue 17: within +-25%).

Runs each suite with `prm-rga suite run` (private local Ray) into one fresh SQLite store, in
order: the first suite is estimated by calibration (the store has no history), a later one
from the history the earlier ones left where their cost families meet (else by calibration);
`--no-reuse`, so that every trial trains. Error = measured wall / estimated wall - 1, both as
the launch prints them (`estimate against actual`). `--epochs` and `--images` shorten the
schedule (a synthetic set of that size in a temporary folder) to check the script itself.
Usage:
    python bench/bench_estimate.py [--suites quick fig6] [--epochs N --images N]
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, ROOT)


def suite_file(name: str, folder: str, epochs, images) -> str:
    """The suite's file, with the shorter schedule and data set when asked."""
    from experiments import suites
    path = suites.load_suite(name).path
    if epochs is None and images is None:
        return path
    with open(path) as f:
        spec = yaml.safe_load(f)
    options = spec['scales']['tiny'].setdefault('cfg_options', {}) or {}
    if epochs is not None:
        options['train_cfg.max_epochs'] = epochs
    if images is not None:
        options.update({'synth_data.num_train': images, 'synth_data.num_val': images // 4})
    spec['scales']['tiny']['cfg_options'] = options
    out = osp.join(folder, f'{name}.yaml')  # same name, so the same experiment
    with open(out, 'w') as f:
        yaml.safe_dump(spec, f)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--suites', nargs='+', default=['quick', 'fig6'])
    parser.add_argument('--epochs', type=int, help='train_cfg.max_epochs of every trial')
    parser.add_argument('--images', type=int, help='training images (val: a quarter)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='bench_estimate_') as tmp:
        env = dict(os.environ)
        if args.images is not None:  # another synthetic set than data/synth's
            env['PRM_RGA_SYNTH'] = osp.join(tmp, 'synth')
        print('| suite | trials | estimated from | estimated wall | measured wall | error | '
              'trial time, estimated vs measured |')
        print('|---|---:|---|---:|---:|---:|---|')
        for name in args.suites:
            out = subprocess.run(
                [sys.executable, '-m', 'prm_rga_cli', 'suite', 'run',
                 suite_file(name, tmp, args.epochs, args.images), '--no-reuse',
                 '--tracking-uri', f'sqlite:///{tmp}/mlruns/mlflow.db',
                 '--storage-path', osp.join(tmp, 'tune'), '--work-dir', osp.join(tmp, 'work')],
                cwd=ROOT, env=env, capture_output=True, text=True).stdout
            match = re.search(r'estimate against actual: wall (\S+) vs (\S+)[^;]*(; trial time '
                              r'(.*))?$', out, re.MULTILINE)
            if match is None:
                sys.exit(f'{name}: no estimate against actual in the output:\n{out[-3000:]}')
            sources = ', '.join(
                f'{n} by {"history" if how.startswith("rates of") else "calibration"}'
                for n, how in re.findall(r'^  (\d+) trial\(s\) like \S+: (.*)$', out, re.M))
            trials = re.search(r'^suite \S+: (\d+) trials', out, re.MULTILINE)[1]
            guess, took = seconds(match[1]), seconds(match[2])
            print(f'| {name} | {trials} | {sources} | {match[1]} | {match[2]} | '
                  f'{100 * (took / guess - 1):+.0f}% | {match[4] or "-"} |', flush=True)


def seconds(text: str) -> int:
    h, m, s = (int(x) for x in text.split(':'))
    return 3600 * h + 60 * m + s


if __name__ == '__main__':
    main()
