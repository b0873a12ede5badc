"""The dashboard in a real headless browser (Debian's chromium + chromedriver, via selenium):
every figure loads, every table renders, no console errors, rows link into the MLflow UI."""
import shutil

import pytest

from dashboards import dashboard
from mlflow_store import write_store

webdriver = pytest.importorskip('selenium.webdriver')
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason='chromium/chromedriver missing: run tools/setup.sh')


@pytest.fixture(scope='module')
def page(tmp_path_factory):
    store = write_store(str(tmp_path_factory.mktemp('mlflow')))
    out = str(tmp_path_factory.mktemp('dashboard'))
    path = dashboard.build(store['suites'] + ['table7'], store['uri'], out, log=lambda m: None)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'):
        options.add_argument(arg)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    try:
        driver.get(f'file://{path}')
        yield driver
    finally:
        driver.quit()


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
