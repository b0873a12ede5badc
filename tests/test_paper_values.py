"""The transcribed paper numbers match the paper's own text."""
import os.path as osp
import re

import pytest

from analysis import paper_values

PAPER = osp.join(osp.dirname(__file__), 'data', 'rga-prm-paper.md')  # a copy of the paper's text
NUMBER = re.compile(r'\d+\.\d+')
# Tables whose extracted text doubles or drops cells: our values must appear in order in the line.
GARBLED = {'table4', 'table6'}
# Rows with no line of their own in the extracted text (see paper_values' docstring).
LINELESS = {('table4', ('7', '-')), ('table7', ('Faster R-CNN Baseline in [23]', ))}
HEADER_LINES = {'table1': 2, 'table5': 2}  # the others have one


@pytest.fixture(scope='module')
def paper_text():
    with open(PAPER, encoding='utf-8') as f:
        return f.read()


def table_lines(text, number):
    """The tab-separated lines that follow the caption '**Table N.**'."""
    lines = text[text.index(f'**Table {number}.**'):].splitlines()[1:]
    block = []
    for line in lines:
        if '\t' in line:
            block.append(line)
        elif block and line.strip():
            break
    return block


def is_subsequence(values, numbers):
    it = iter(numbers)
    return all(any(v == n for n in it) for v in values)


@pytest.mark.parametrize('name', sorted(paper_values.TABLES))
def test_table_values_match_paper(paper_text, name):
    table = paper_values.TABLES[name]
    lines = table_lines(paper_text, name[len('table'):])[HEADER_LINES.get(name, 1):]
    lines = [line for line in lines if NUMBER.search(line)]
    rows = [(label, values) for label, values in table.rows.items()
            if (name, label) not in LINELESS]
    assert len(lines) == len(rows), (name, lines)
    for line, (label, values) in zip(lines, rows):
        assert len(values) == len(table.columns)
        numbers = [float(n) for n in NUMBER.findall(line)]
        ours = [v for v in values if v is not None]
        if name in GARBLED:
            assert is_subsequence(ours, numbers), (name, label, line)
        else:
            assert ours == numbers, (name, label, line)
        first = label[0].replace('*', '')
        if name in ('table2', 'table3', 'table7'):
            assert line.startswith(first), (label, line)


def test_garbled_cells_come_from_the_text(paper_text):
    ap, ap50, ap75 = paper_values.TABLES['table4'].rows[('7', '-')]
    gain, base = re.search(r'bring (\d+\.\d+)% improvement on AP compared to its baseline '
                           r'\((\d+\.\d+)%\)', paper_text).groups()
    assert ap == pytest.approx(float(base) + float(gain))
    assert str(ap50) in table_lines(paper_text, 4)[1]
    assert ap75 is None


def test_fig6_share(paper_text):
    share = re.search(r'more than (\d+\.\d+)% pairs', paper_text).group(1)
    assert paper_values.FIG6_SHARE_DIFF_GT_01 == float(share)
