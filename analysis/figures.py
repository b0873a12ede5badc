"""The paper's figures from our runs, in its layout (PNG and PDF). A panel without runs says
"not run" and what it needs, so every figure file exists.

The margins are fixed (inches, room for the tick labels, axis labels and titles these figures
carry): a layout engine (tight, constrained) or ``bbox_inches='tight'`` measures every text of a
figure again at each save, which was most of the report's drawing time.
"""
import os.path as osp
import textwrap

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis import intervals, measures, paper_values, specs  # noqa: E402

BASE, RGA_LABEL = specs.FIGURES['fig3']
HEIGHT = 3.6
LEFT, RIGHT, BOTTOM, TOP, GAP = 0.8, 0.2, 0.55, 0.35, 0.8  # margins, between panels: inches
# Titles at the top of their axes, where matplotlib's automatic placement puts them when no tick
# labels are above: it measures the y tick labels again at every save to decide so.
STYLE = {'axes.titley': 1.0}


def _subplots(ncols: int, width: float):
    """A figure of NCOLS panels side by side, WIDTH x HEIGHT inches, with the fixed margins."""
    panel = (width - LEFT - RIGHT - GAP * (ncols - 1)) / ncols
    return plt.subplots(1, ncols, figsize=(width, HEIGHT), gridspec_kw=dict(
        left=LEFT / width, right=1 - RIGHT / width, bottom=BOTTOM / HEIGHT, top=1 - TOP / HEIGHT,
        wspace=GAP / panel))


def _not_run(ax, needs: str):
    ax.text(0.5, 0.5, 'not run\n' + textwrap.fill(f'(needs {needs})', 36), ha='center',
            va='center', transform=ax.transAxes, color='0.4')
    ax.set_xticks([])
    ax.set_yticks([])


def _band(ax, frame, label, scale=1.0, top=None, **kw):
    """Mean over seeds with its 95% interval over seeds as a band (none for one seed), cut to
    the values the quantity can take: [0, TOP] (a t interval over 3 seeds runs past them, e.g.
    an accuracy above 1)."""
    mean, std = frame.mean(axis=1) * scale, frame.std(axis=1).fillna(0) * scale
    n = frame.shape[1]
    half = intervals.half_width(std, frame.notna().sum(axis=1))
    line, = ax.plot(mean.index, mean,
                    label=f'{label} (n={n}' + (', 95% CI)' if n > 1 else ', one seed)'), **kw)
    if n > 1:
        ax.fill_between(mean.index, (mean - half).clip(lower=0), (mean + half).clip(upper=top),
                        color=line.get_color(), alpha=0.2)


def fig1a(runs):
    fig, ax = _subplots(1, 5)
    key = 'train/num_pos/h0'
    data = measures.curves(runs, specs.BASELINE, [key])
    if key in data:
        _band(ax, measures.smooth(data[key]), BASE)
        ax.set_xlabel('iteration')
        ax.set_ylabel('# positive proposals (per image)')
        ax.legend()
    else:
        _not_run(ax, f'a baseline run with {key}')
    ax.set_title('(a) sampled positive proposals')
    return fig


def fig1b(runs):
    fig, ax = _subplots(1, 5)
    table = measures.rpn_positives(runs)
    if len(table):
        groups = sorted(table['num_gt'].unique())
        ax.boxplot([table.loc[table['num_gt'] == g, 'num_pos'] for g in groups],
                   positions=range(len(groups)), showfliers=False)
        ax.set_xticks(range(len(groups)), [str(g) for g in groups], fontsize=7)
        ax.set_xlabel('# ground-truth instances in the image')
        ax.set_ylabel('# positive proposals (IoU ≥ 0.5)')
    else:
        _not_run(ax, 'a baseline run with rpn_pos_vs_gt.csv')
    ax.set_title('(b) positive RPN proposals vs GT count')
    return fig


def fig2(runs):
    fig, axes = _subplots(2, 9)
    for ax, (subset, points) in zip(axes, measures.fig2_points(runs).items()):
        single = points.drop('PRM')
        have = single[single['n'] > 0]
        if len(have) == 0 and points.loc['PRM', 'n'] == 0:
            _not_run(ax, f'runs with ratios {", ".join(specs.FIG2_RATIOS)} and PRM')
        else:
            x = np.arange(len(single))
            ax.errorbar(x[single['n'] > 0], have['mean'],
                        yerr=intervals.half_width(have['std'].fillna(0), have['n']),
                        marker='o', capsize=3, label='Faster R-CNN (95% CI over seeds)')
            prm = points.loc['PRM']
            if prm['n'] > 0:
                ax.axhline(prm['mean'], color='C3', ls='--',
                           label=f'Faster R-CNN w/ PRM (1:1, 1:9; n={int(prm["n"])})')
            ax.set_xticks(x, single.index)
            ax.set_xlabel('training sampling ratio (pos:neg)')
            ax.set_ylabel('AP (%)')
            ax.legend(fontsize=7)
        ax.set_title(f'GT instances in {subset}')
    return fig


def fig3(runs):
    fig, axes = _subplots(3, 13)
    panels = [('train/acc_pos/h0', 'training accuracy, positive proposals', 'iteration'),
              ('train/acc_neg/h0', 'training accuracy, negative proposals', 'iteration'),
              ('val/bbox_mAP', 'validation AP (%)', 'epoch')]
    selectors = specs.FIGURES['fig3']
    data = {label: measures.curves(runs, sel, [p[0] for p in panels])
            for label, sel in selectors.items()}
    for ax, (key, ylabel, xlabel), title in zip(axes, panels, ('Left', 'Middle', 'Right')):
        drawn = False
        for label in selectors:
            if key in data[label]:
                frame = data[label][key]
                frame = frame * 100 if key.startswith('val/') else measures.smooth(frame)
                _band(ax, frame, label, marker='o' if key.startswith('val/') else None,
                      top=100 if key.startswith('val/') else 1)
                drawn = True
        if drawn:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=7)
        else:
            _not_run(ax, f'baseline and RGA runs with {key}')
        ax.set_title(title)
    return fig


def fig5(runs):
    fig, axes = _subplots(2, 9)
    selectors = specs.FIGURES['fig5']
    names = {'PRM': ('R-CNN1', 'R-CNN2'), 'Mask R-CNN': ('BBox head', 'Mask head')}
    for ax, (label, keys) in zip(axes, specs.FIG5_KEYS.items()):
        data = measures.curves(runs, selectors[label], keys)
        if all(k in data for k in keys):
            a, b, total = (measures.smooth(data[k]) for k in keys)
            n1, n2 = names[label]
            _band(ax, a, f'‖g {n1}‖')
            _band(ax, b, f'‖g {n2}‖')
            _band(ax, total, f'‖g {n1} + g {n2}‖')
            _band(ax, a + b, f'‖g {n1}‖ + ‖g {n2}‖', ls='--')
            ax.set_xlabel('iteration')
            ax.set_ylabel('F-norm of Block4.Conv1 gradient')
            ax.legend(fontsize=7)
        else:
            _not_run(ax, f'a {label} run with {", ".join(keys)}')
        ax.set_title(f'{"Left" if label == "PRM" else "Right"}: {label}')
    return fig


def fig6(runs):
    fig, axes = _subplots(2, 9)
    scores = measures.head_scores(runs)
    if len(scores):
        bins = np.linspace(0, 1, 41)
        axes[0].hist(scores['h0'], bins, alpha=0.6, label='R-CNN1 (1:1)')
        axes[0].hist(scores['h1'], bins, alpha=0.6, label='R-CNN2 (1:9)')
        axes[0].set_xlabel('predicted score')
        axes[0].set_ylabel('# proposals')
        axes[0].set_yscale('log')
        axes[0].legend(fontsize=7)
        diff = (scores['h0'] - scores['h1']).abs()
        axes[1].hist(diff, bins, color='C2')
        axes[1].axvline(0.1, color='k', ls='--')
        share = 100 * (diff > 0.1).mean()
        axes[1].text(0.97, 0.95, f'|diff| > 0.1: {share:.1f}% of pairs\n(paper: '
                     f'{paper_values.FIG6_SHARE_DIFF_GT_01}%)', ha='right', va='top',
                     transform=axes[1].transAxes, fontsize=8)
        axes[1].set_xlabel('|score R-CNN1 − score R-CNN2|')
        axes[1].set_ylabel('# proposal pairs')
        axes[1].set_yscale('log')
    else:
        for ax in axes:
            _not_run(ax, 'a PRM (1:1, 1:9) run with scores.npz')
    axes[0].set_title('Left: predicted scores')
    axes[1].set_title('Right: absolute score difference')
    return fig


FIGURES = {'fig1a': fig1a, 'fig1b': fig1b, 'fig2': fig2, 'fig3': fig3, 'fig5': fig5,
           'fig6': fig6}


def write(runs, name: str, out_dir: str) -> dict:
    """Draw figure NAME and save it as NAME.png and NAME.pdf."""
    with plt.rc_context(STYLE):
        fig = FIGURES[name](runs)
    paths = {ext: osp.join(out_dir, f'{name}.{ext}') for ext in ('png', 'pdf')}
    for ext, path in paths.items():  # no creation date in a PDF: the same runs, the same file
        fig.savefig(path, dpi=130, metadata={'CreationDate': None} if ext == 'pdf' else None)
    plt.close(fig)
    return paths
