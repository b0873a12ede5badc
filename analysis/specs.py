"""Which runs feed each table cell, figure and claim: the suite params that select them.

This is the one place that ties the paper's rows to our runs. A selector is a dict of suite
params (the MLflow params of a child run, docs: DESIGN.md); a param a run does not log takes its
value from DEFAULTS, and ``ANY`` matches every value. Runs of all the suites given to
`prm-rga report` are pooled, so a row is filled from whichever suite ran its params (a baseline
of `quick` fills Table 2's first row). Metric values are fractions in MLflow and percent here.
"""
from dataclasses import dataclass, field

from analysis import paper_values

ANY = '*'
DEFAULTS = dict(detector='faster_rcnn', backbone='r50', schedule='1x', dataset='coco',
                ratios='1:3', sampling='soft', lambda0=1.0, anneal=True, ensemble='none')

AP, AP50, AP75 = 'val/bbox_mAP', 'val/bbox_mAP_50', 'val/bbox_mAP_75'
H0, H1 = 'val/h0/bbox_mAP', 'val/h1/bbox_mAP'
RGA = dict(lambda0=7.0, anneal=True)
PRM = dict(ratios='1:1,1:9')
PRM3 = dict(ratios='1:1,1:9,1:3')


@dataclass(frozen=True)
class Column:
    metric: str  # the MLflow metric a cell of this column reads, unless its row says otherwise
    params: dict = field(default_factory=dict)  # added to the row's selector (Table 8: sampling)


@dataclass(frozen=True)
class Row:
    params: dict
    metrics: dict = None  # column -> metric for rows whose cells read other metrics; others '-'


@dataclass(frozen=True)
class TableSpec:
    columns: dict  # paper column name -> Column
    rows: dict  # paper row label -> Row (only the rows we run; Table 3/7 skip other methods)
    note: str = ''


def _columns(*pairs):
    return {name: Column(metric) for name, metric in pairs}


BOX = _columns(('AP', AP), ('AP50', AP50), ('AP75', AP75))
METHODS = {  # Tables 2 and 3: paper method -> params
    'Faster R-CNN': {}, 'Faster R-CNN*': {}, 'Cascade R-CNN': dict(detector='cascade_rcnn'),
    'Cascade R-CNN*': dict(detector='cascade_rcnn'), 'Faster R-CNN w/ RGA': RGA,
    'Cascade R-CNN w/ RGA': dict(detector='cascade_rcnn', **RGA),
    'Faster R-CNN w/ RGA+PRM': dict(**RGA, **PRM),
    'Cascade R-CNN w/ RGA+PRM': dict(detector='cascade_rcnn', **RGA, **PRM),
}
BACKBONES = {'ResNet-50': 'r50', 'ResNeXt-101_32x4d': 'x101-32x4d', 'ResNet-101-FPN': 'r101',
             'ResNeXt-101-FPN': 'x101-64x4d'}
TABLE3_ROWS = [('Faster R-CNN*', 'ResNet-101-FPN'), ('Cascade R-CNN*', 'ResNet-101-FPN'),
               ('Faster R-CNN w/ RGA+PRM', 'ResNet-101-FPN'),
               ('Faster R-CNN w/ RGA+PRM', 'ResNeXt-101-FPN'),
               ('Cascade R-CNN w/ RGA+PRM', 'ResNet-101-FPN'),
               ('Cascade R-CNN w/ RGA+PRM', 'ResNeXt-101-FPN')]

TABLES = {
    'table1': TableSpec(_columns(('R-CNN1', AP), ('R-CNN2', AP), ('Ensemble', AP)), {
        ('✓', ''): Row(dict(ratios='1:1'), {'R-CNN1': AP}),
        ('', '✓'): Row(dict(ratios='1:9'), {'R-CNN2': AP}),
        ('✓', '✓'): Row(PRM, {'R-CNN1': H0, 'R-CNN2': H1, 'Ensemble': AP}),
    }),
    'table2': TableSpec(BOX, {
        (m, b, s): Row(dict(METHODS[m], backbone=BACKBONES[b], schedule=s))
        for m, b, s in paper_values.TABLES['table2'].rows}),
    'table3': TableSpec(
        _columns(('AP', AP), ('AP50', AP50), ('AP75', AP75), ('APS', 'val/bbox_mAP_s'),
                 ('APM', 'val/bbox_mAP_m'), ('APL', 'val/bbox_mAP_l')),
        {(m, b): Row(dict(METHODS[m], backbone=BACKBONES[b])) for m, b in TABLE3_ROWS},
        note='The paper reports COCO test-dev; ours is the validation set of the run.'),
    'table4': TableSpec(BOX, {
        ('1', '-'): Row({}),
        ('7', '-'): Row(dict(lambda0=7.0, anneal=False)),
        **{(str(k), '✓'): Row(dict(lambda0=float(k), anneal=True)) for k in (3, 5, 7, 9)},
    }),
    'table5': TableSpec(_columns(('R1', H0), ('R2', H1), ('E', AP)), {
        ('Faster R-CNN', '1:1', '-'): Row(dict(ratios='1:1'), {'R1': AP}),
        ('Faster R-CNNx2', '1:1', '1:9'): Row(dict(PRM, ensemble='separate'), {
            'R1': 'm0/val/bbox_mAP', 'R2': 'm1/val/bbox_mAP', 'E': AP}),
        **{('Faster R-CNN w/ PRM', '1:1', r): Row(dict(ratios=f'1:1,{r}'))
           for r in ('1:1', '1:5', '1:9')},
    }, note='Faster R-CNNx2: R1/R2 are the two separately trained detectors (their own '
            'evaluations, m0/ and m1/), E their proposal-level ensemble.'),
    'table6': TableSpec(BOX, {
        ('-', '-'): Row(PRM), ('✓', '-'): Row(PRM3),
        ('-', '✓'): Row(dict(PRM, **RGA)), ('✓', '✓'): Row(dict(PRM3, **RGA)),
    }),
    'table7': TableSpec(_columns(('mMR', 'val/mMR'), ('AP50', 'val/AP50')), {
        ('Faster R-CNN*', ): Row(dict(dataset='crowdhuman')),
        ('Faster R-CNN w/ PRM', ): Row(dict(PRM, dataset='crowdhuman')),
        ('Faster R-CNN w/ RGA+PRM', ): Row(dict(PRM, **RGA, dataset='crowdhuman')),
    }, note='Our runs only: the first row of the paper (the CrowdHuman paper\'s baseline) has '
            'no values in its text.'),
    'table8': TableSpec(
        {'hard method': Column(AP, dict(sampling='hard')),
         'soft method': Column(AP, dict(sampling='soft'))},
        {(r, ): Row(dict(ratios=r)) for r in ('1:1', '1:3', '1:5', '1:7')}),
}

# Figures and claims read the runs of these selectors.
BASELINE = {}
FIG2_RATIOS = ('1:1', '1:3', '1:5', '1:7', '1:9')
FIG2_SUBSETS = {'[1, 3]': 'val/gt1-3/bbox_mAP', '[8, ∞)': 'val/gt8-inf/bbox_mAP'}
MASK = dict(detector='mask_rcnn')
# The runs each figure of a suite's `analysis:` list draws: curve or panel -> selector.
FIGURES = {
    'fig1': {'Faster R-CNN': BASELINE},
    'fig2': {**{r: dict(ratios=r) for r in FIG2_RATIOS}, 'PRM': PRM},
    'fig3': {'Faster R-CNN': BASELINE, 'Faster R-CNN w/ RGA': RGA},
    'fig5': {'PRM': PRM, 'Mask R-CNN': MASK},
    'fig6': {'PRM': PRM},
}
FIG5_KEYS = {'PRM': ('train/grad_fnorm/h0', 'train/grad_fnorm/h1', 'train/grad_fnorm/sum'),
             'Mask R-CNN': ('train/grad_fnorm/bbox', 'train/grad_fnorm/mask',
                            'train/grad_fnorm/sum')}


def _base_method(label, column):
    method, backbone, schedule = label
    base = 'Cascade R-CNN' if method.startswith('Cascade') else 'Faster R-CNN'
    return (base, backbone, schedule), column


# Per table: the reference cell each cell's effect is measured against ("Δ ours [95% CI]" next
# to "Δ paper"), or None. An effect carries across scales where absolute AP does not.
REFERENCES = {
    'table1': lambda label, column: (
        (('✓', ''), 'R-CNN1') if column == 'R-CNN1' else (('', '✓'), 'R-CNN2')
        if column == 'R-CNN2' else None),
    'table2': _base_method,
    'table4': lambda label, column: (('1', '-'), column),
    'table5': lambda label, column: (('Faster R-CNN', '1:1', '-'), 'R1'),
    'table6': lambda label, column: (('-', label[1]), column),
    'table7': lambda label, column: (('Faster R-CNN*', ), column),
    'table8': lambda label, column: (label, 'soft method') if column == 'hard method' else None,
}
