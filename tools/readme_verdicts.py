"""Writes the README's verdict summary from a committed report, so that it is never edited by
hand: `python tools/readme_verdicts.py docs/reproduction` replaces what lies between the
README's `<!-- verdicts:start -->` and `<!-- verdicts:end -->` with the claims of that report's
claims.csv (analysis.claims.summary, links into the report folder); tests/test_docs.py checks
that the README says what that claims.csv says."""
import argparse
import os.path as osp
import re
import sys

import pandas as pd

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
from analysis import claims  # noqa: E402

START, END = '<!-- verdicts:start -->', '<!-- verdicts:end -->'
BLOCK = re.compile(re.escape(START) + r'\n.*?' + re.escape(END), re.S)


def block(report_dir: str) -> str:
    """The README's verdict section for the report in REPORT_DIR (relative to the repo root)."""
    report_dir = report_dir.rstrip('/')
    frame = pd.read_csv(osp.join(ROOT, report_dir, 'claims.csv'))
    return (f'{START}\nFrom [{report_dir}/report.md]({report_dir}/report.md), written by '
            f'`prm-rga report` from the runs it names.\n\n'
            f'{claims.summary(frame, report_dir + "/")}{END}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('report_dir', help='a report folder in the repo, e.g. docs/reproduction')
    parser.add_argument('--readme', default=osp.join(ROOT, 'README.md'))
    args = parser.parse_args(argv)
    text = open(args.readme, encoding='utf-8').read()
    if len(BLOCK.findall(text)) != 1:
        print(f'{args.readme}: needs exactly one {START} ... {END} section', file=sys.stderr)
        return 2
    with open(args.readme, 'w', encoding='utf-8') as f:
        f.write(BLOCK.sub(lambda _: block(args.report_dir), text))
    return 0


if __name__ == '__main__':
    sys.exit(main())
