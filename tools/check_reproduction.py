"""Checks a report's runs.csv against the suites it reports: every trial of every suite, at the
scale and with the seeds given, has exactly one FINISHED run of its config hash (a trial that
several suites share is trained once and counted once). `make reproduce` runs it on
`reports/reproduction`; `python tools/check_reproduction.py docs/reproduction` on the
committed one. Prints a line per suite and each trial without its run; exit 1 when any."""
import argparse
import os.path as osp
import sys

import pandas as pd

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
from experiments import suites  # noqa: E402
from prm_rga_errors import InputError  # noqa: E402


def missing(finished: pd.Series, planned: dict) -> dict:
    """suite -> its trials (name, config hash) whose config hash no FINISHED run has
    (FINISHED: run -> config hash); PLANNED maps suite -> its trials."""
    done = set(finished)
    return {suite: [(t.name, t.params['config_hash']) for t in trials
                    if t.params['config_hash'] not in done]
            for suite, trials in planned.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('report_dir', help='a report folder, e.g. docs/reproduction')
    parser.add_argument('--suites', nargs='+', required=True, metavar='SUITE')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--scale', default='tiny', choices=suites.SCALES)
    args = parser.parse_args(argv)
    path = osp.join(args.report_dir, 'runs.csv')
    try:
        runs = pd.read_csv(path, usecols=['suite', 'trial', 'status', 'config_hash'])
        planned = {s: suites.expand(suites.load_suite(s), args.scale, args.seeds)
                   for s in args.suites}
    except (OSError, ValueError, InputError) as err:
        print(f'check_reproduction: {path}: {err}', file=sys.stderr)
        return 2
    finished = runs.loc[runs['status'] == 'FINISHED', 'config_hash']
    counts = finished.value_counts()
    twice = sorted(counts[counts > 1].index)
    gaps = missing(finished, planned)
    for suite, trials in planned.items():
        print(f'{suite:<7} {len(trials) - len(gaps[suite]):>3} of {len(trials)} trials have a '
              'finished run')
        for name, config_hash in gaps[suite]:
            print(f'        missing: {name} (config {config_hash})')
    unique = {t.params['config_hash'] for trials in planned.values() for t in trials}
    print(f'{len(unique)} distinct configs in {sum(map(len, planned.values()))} trials; '
          f'{len(runs)} runs in {path}')
    if twice:
        print(f'trained more than once: configs {", ".join(twice)}')
    return 1 if twice or any(gaps.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
