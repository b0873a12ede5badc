"""The dashboard in a real headless browser (Debian's chromium + chromedriver, via selenium):
every figure loads, every table renders, no console errors, the claims table says what the
report says, rows link into the MLflow UI to the store's runs."""
import os
import os.path as osp
import shutil

import pandas as pd
import pytest
from mlflow import MlflowClient

from dashboards import dashboard


def find_browser():
    """(chromium, chromedriver) paths. Without them, or without selenium, the tests skip on a
    laptop and fail where $CI is set: a CI run must not pass without having run them."""
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    driver = shutil.which('chromedriver')
    try:
        import selenium  # noqa: F401  (the browser driver the tests use)
    except ImportError:
        chromium = None
    if chromium and driver:
        return chromium, driver
    why = 'chromium, chromedriver or selenium missing: run tools/setup.sh'
    if os.environ.get('CI'):
        pytest.fail(f'{why} ($CI is set: the dashboard test may not be skipped)')
    pytest.skip(why)


def test_a_missing_browser_fails_where_ci_is_set(monkeypatch):
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    for ci, outcome in (('true', pytest.fail.Exception), ('', pytest.skip.Exception)):
        monkeypatch.setenv('CI', ci)
        # both caught here, so that a skip cannot skip this test
        with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as raised:
            find_browser()
        assert raised.type is outcome and 'tools/setup.sh' in str(raised.value), (ci, raised)


@pytest.fixture(scope='module')
def built(tmp_path_factory, fixture_store):
    """(store, dashboard folder, page path, browser)."""
    browser = find_browser()
    store = fixture_store
    out = str(tmp_path_factory.mktemp('dashboard'))
    path = dashboard.build(store['suites'] + ['table7'], store['uri'], out, log=lambda m: None)
    return store, out, path, browser


@pytest.fixture(scope='module')
def page(built):
    from selenium import webdriver
    path, (chromium, driver) = built[2], built[3]
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'):
        options.add_argument(arg)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))
    try:
        driver.get(f'file://{path}')
        yield driver
    finally:
        driver.quit()


def table_after(page, heading: str) -> list:
    """The rows of the first table after the heading that starts with HEADING, header first:
    per cell (its text, [(experiment id, run id, text) of each link into the MLflow UI])."""
    rows = page.execute_script(
        'const h = Array.from(document.querySelectorAll("h2, h3")).find('
        '  e => e.textContent.startsWith(arguments[0]));'
        'let t = h.nextElementSibling; while (t.tagName !== "TABLE") t = t.nextElementSibling;'
        'return Array.from(t.rows).map(r => Array.from(r.cells).map(c => [c.textContent,'
        '  Array.from(c.querySelectorAll("a")).map(a => [a.href, a.textContent])]));', heading)
    ui = 'http://127.0.0.1:5000/#/experiments/'
    for row in rows:
        for cell in row:
            links = [(href[len(ui):].split('/runs/'), text) for href, text in cell[1]
                     if href.startswith(ui)]
            cell[1] = [(experiment, run_id, text) for (experiment, run_id), text in links]
    return rows


def child_runs(store) -> dict:
    """run id -> (experiment id, run) of every trial run of the store."""
    client = MlflowClient(store['uri'])
    out = {}
    for suite in store['suites']:
        experiment = client.get_experiment_by_name(suite).experiment_id
        out.update({r.info.run_id: (experiment, r) for r in client.search_runs([experiment])
                    if 'mlflow.parentRunId' in r.data.tags})
    return out


def test_claims_table_says_what_the_report_says(built, page):
    report = pd.read_csv(osp.join(built[1], 'claims.csv'))
    header, *rows = table_after(page, 'Claims')
    column = {name: i for i, (name, _) in enumerate(header)}
    shown = {row[column['claim']][0]: row[column['verdict']][0] for row in rows}
    assert len(rows) == len(report)
    assert {cid: shown[text] for cid, text in zip(report['id'], report['claim'])} == dict(
        zip(report['id'], report['verdict']))


def test_links_go_to_the_stores_runs(built, page):
    """The all-runs table links every trial run of the store once, under its experiment; a
    table row links the runs of its seeds (Table 4, λ0 = 7 constant: seeds 0 and 1 of the
    table4 suite); the failed run is linked from the problems table."""
    store = built[0]
    runs = child_runs(store)
    links = [link for row in table_after(page, 'All runs')[1:] for cell in row
             for link in cell[1]]
    assert sorted(run_id for _, run_id, _ in links) == sorted(runs)
    assert all(runs[run_id][0] == experiment for experiment, run_id, _ in links)
    (row, ) = [row for row in table_after(page, 'Table 4')[1:]
               if [row[0][0], row[1][0]] == ['7', '-']]
    trials = {f'lambda0=7.0;anneal=false;seed={s}' for s in (0, 1)}
    assert {(e, i, text) for e, i, text in row[-1][1]} == {
        (e, i, f's{r.data.params["seed"]}') for i, (e, r) in runs.items()
        if r.data.tags['trial'] in trials and r.data.tags['suite'] == 'table4'}
    (failed, ) = [i for i, (_, r) in runs.items() if r.info.status == 'FAILED']
    assert [link[1] for row in table_after(page, 'Runs that did not finish')[1:]
            for link in row[-1][1]] == [failed]


def test_every_figure_loads(page):
    sizes = page.execute_script(
        'return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);')
    assert [s[0] for s in sizes] == ['fig1a', 'fig1b', 'fig2', 'fig3', 'fig5', 'fig6']
    assert all(complete and width > 0 for _, complete, width in sizes), sizes


def test_every_table_renders(page):
    shapes = page.execute_script(
        'return Array.from(document.querySelectorAll("table")).map('
        't => [t.rows.length, t.offsetHeight]);')
    # problems, claims, Tables 1-8, all runs
    assert len(shapes) == 11
    assert all(rows > 1 and height > 0 for rows, height in shapes), shapes
    headings = [h.text for h in page.find_elements('css selector', 'h3')]
    assert [h.split('.')[0] for h in headings] == [f'Table {i}' for i in range(1, 9)]


def test_rows_link_to_mlflow_runs(page):
    links = [a.get_attribute('href') for a in page.find_elements('css selector', 'a')]
    runs = [url for url in links if '/#/experiments/' in url and '/runs/' in url]
    assert runs and all(url.startswith('http://127.0.0.1:5000/#/experiments/') for url in runs)
    assert 'not run (1 failed)' in page.find_element('tag name', 'body').text


def test_no_console_errors(page):
    errors = [entry for entry in page.get_log('browser') if entry['level'] == 'SEVERE']
    assert not errors, errors
