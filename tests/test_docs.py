"""The README and docs/*.md: every relative link points at a file that exists, every `#anchor` at
a heading of its page, and the README's verdict summary is the one tools/readme_verdicts.py writes
from the report it cites."""
import glob
import importlib.util
import os.path as osp
import re
import unicodedata

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGES = ['README.md'] + sorted(osp.relpath(p, ROOT)
                               for p in glob.glob(osp.join(ROOT, 'docs', '*.md')))

FENCE = re.compile(r'^(```|~~~).*?^\1[ \t]*$', re.M | re.S)
CODE_SPAN = re.compile(r'(`+)(?!`).*?(?<!`)\1(?!`)', re.S)
MD_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
HTML_LINK = re.compile(r'<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*"([^"]+)"', re.I)
HEADING = re.compile(r'^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$', re.M)


def read(path):
    with open(osp.join(ROOT, path), encoding='utf-8') as f:
        return f.read()


def prose(text):
    """The text without fenced code blocks and code spans, where a `[x](y)` is not a link."""
    return CODE_SPAN.sub('', FENCE.sub('', text))


def links(text):
    body = prose(text)
    return MD_LINK.findall(body) + HTML_LINK.findall(body)


def slug(heading):
    """GitHub's anchor of a heading: the rendered text, lower case, punctuation dropped, spaces
    to hyphens."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)    # a link renders as its text
    text = re.sub(r'<[^>]+>', '', text).replace('`', '')
    text = re.sub(r'(\*\*|__|\*)', '', text)
    text = ''.join(c for c in text.lower()
                   if c in ' -_' or unicodedata.category(c)[0] in 'LN')
    return text.replace(' ', '-')


def anchors(path):
    """The anchors of a page's headings, numbered as GitHub numbers repeated ones."""
    seen, out = {}, set()
    for _, text in HEADING.findall(FENCE.sub('', read(path))):
        base = slug(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f'{base}-{n}')
    return out


def test_slug_is_githubs():
    assert slug('Configs (`experiments/configs/`)') == 'configs-experimentsconfigs'
    assert slug('Running a suite (`prm-rga suite run`)') == 'running-a-suite-prm-rga-suite-run'
    assert slug('Thousands of trials, tens of thousands of runs') == \
        'thousands-of-trials-tens-of-thousands-of-runs'
    assert slug('Paper scale and GPUs: not measured') == 'paper-scale-and-gpus-not-measured'
    assert slug('Verdicts: which of the **paper\'s** claims hold') == \
        'verdicts-which-of-the-papers-claims-hold'


def test_links_skip_code():
    text = 'see [a](x.md) and `[b](y.md)`\n```\n[c](z.md)\n```\n<img src="p.png" width="5">'
    assert links(text) == ['x.md', 'p.png']


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_resolve(page):
    here = osp.dirname(osp.join(ROOT, page))
    broken = []
    for target in links(read(page)):
        if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):      # http:, https:, mailto:
            continue
        path, _, anchor = target.partition('#')
        dest = osp.normpath(osp.join(here, path)) if path else osp.join(ROOT, page)
        if not osp.exists(dest):
            broken.append(f'{target}: no such file')
            continue
        if anchor and dest.endswith('.md') and anchor not in anchors(osp.relpath(dest, ROOT)):
            broken.append(f'{target}: no heading #{anchor} in {osp.relpath(dest, ROOT)}')
    assert not broken, f'{page}: ' + '; '.join(broken)


def test_every_page_is_checked():
    """The README links every doc, so a newcomer finds each one from it."""
    readme = {osp.normpath(t.partition('#')[0]) for t in links(read('README.md'))}
    missing = [p for p in PAGES[1:] if p not in readme]
    assert not missing, f'docs the README does not link: {missing}'


def test_the_two_commands():
    """The newcomer's two commands lead the README, and CI runs the README's test command."""
    readme = read('README.md')
    first_block = FENCE.search(readme).group(0)
    assert 'make demo' in first_block and 'make test' in first_block
    assert re.search(r'^make test$', read('.ci/run'), re.M)
    sections = [text for level, text in HEADING.findall(FENCE.sub('', readme)) if level == '##']
    assert sections[0] == 'Two commands' and sections[1].startswith('Verdicts')


def test_the_verdicts_are_written_by_the_tool():
    """The README's verdict summary is what tools/readme_verdicts.py writes from the committed
    report it cites, never a hand edit: regenerate it with that tool after a new report."""
    spec = importlib.util.spec_from_file_location(
        'readme_verdicts', osp.join(ROOT, 'tools', 'readme_verdicts.py'))
    readme_verdicts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(readme_verdicts)
    readme = read('README.md')
    start, end = readme_verdicts.START, readme_verdicts.END
    assert readme.count(start) == 1 == readme.count(end), 'one verdicts:start ... verdicts:end'
    section = readme[readme.index(start):readme.index(end) + len(end)]
    cited = re.match(re.escape(start) + r'\nFrom \[([^\]]+)/report\.md\]', section)
    assert cited, 'the verdict summary names its report first'
    assert section == readme_verdicts.block(cited.group(1)), \
        f'run: python tools/readme_verdicts.py {cited.group(1)}'
