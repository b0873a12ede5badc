"""The numbers the paper reports, transcribed once from `paper/rga-prm-paper.md` (in %).

Every table keeps the paper's row labels and column names, so a reader can put our tables next
to the paper's. ``None`` marks a cell the paper leaves empty ('-') or whose value is not in the
paper's text. `tests/test_paper_values.py` parses the paper and checks each value.

Where the paper's text is garbled (its Tables 4 and 6 lost cells in extraction), the value is
the one the surrounding text fixes:
- Table 4, λ0 = 7 without annealing: AP 36.7 (the text: "+0.6% over its baseline (36.1%)"),
  AP50 58.5 (printed in the first row's cell), AP75 not in the text.
- Table 4, λ0 = 7 with annealing: AP50 59.4 (the bold value of its cell).
- Table 6: the first of each doubled AP50 cell (row 3's 60.0 equals Table 2's RGA+PRM row).
- Table 7: the first row (Faster R-CNN of the CrowdHuman paper) has no values in the text.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class PaperTable:
    caption: str
    labels: tuple  # names of the leading label columns
    columns: tuple  # names of the value columns
    rows: dict  # label tuple -> tuple of values (one per column; None = '-' / not in the text)


TABLES = {
    'table1': PaperTable(
        'PRM with sampling ratios 1:1 and 1:9: each R-CNN module and their ensemble (AP, %)',
        ('1:1', '1:9'), ('R-CNN1', 'R-CNN2', 'Ensemble'), {
            ('✓', ''): (36.3, None, None),
            ('', '✓'): (None, 34.9, None),
            ('✓', '✓'): (37.0, 36.9, 37.3),
        }),
    'table2': PaperTable(
        'RGA and PRM across backbones, schedules and detectors (COCO minival)',
        ('Method', 'Backbone', 'Schedule'), ('AP', 'AP50', 'AP75'), {
            ('Faster R-CNN', 'ResNet-50', '1x'): (36.1, 58.1, 38.8),
            ('Faster R-CNN', 'ResNet-50', '2x'): (37.3, 59.0, 40.5),
            ('Faster R-CNN', 'ResNeXt-101_32x4d', '1x'): (40.1, 62.0, 43.8),
            ('Cascade R-CNN', 'ResNet-50', '1x'): (40.5, 58.6, 44.2),
            ('Faster R-CNN w/ RGA', 'ResNet-50', '1x'): (37.3, 59.4, 40.8),
            ('Faster R-CNN w/ RGA', 'ResNet-50', '2x'): (38.4, 59.9, 41.8),
            ('Faster R-CNN w/ RGA', 'ResNeXt-101_32x4d', '1x'): (41.0, 63.2, 45.1),
            ('Cascade R-CNN w/ RGA', 'ResNet-50', '1x'): (41.1, 59.8, 44.8),
            ('Faster R-CNN w/ RGA+PRM', 'ResNet-50', '1x'): (38.1, 60.0, 41.6),
            ('Faster R-CNN w/ RGA+PRM', 'ResNet-50', '2x'): (39.0, 60.5, 42.3),
            ('Faster R-CNN w/ RGA+PRM', 'ResNeXt-101_32x4d', '1x'): (41.4, 63.3, 45.4),
            ('Cascade R-CNN w/ RGA+PRM', 'ResNet-50', '1x'): (41.7, 60.0, 45.5),
        }),
    'table3': PaperTable(
        'Comparison with the state of the art (COCO test-dev; * = the authors\' re-implementation)',
        ('Method', 'Backbone'), ('AP', 'AP50', 'AP75', 'APS', 'APM', 'APL'), {
            ('YOLOv2', 'DarkNet-19'): (21.6, 44.0, 19.2, 5.0, 22.4, 35.5),
            ('SSD512', 'ResNet-101'): (31.2, 50.4, 33.3, 10.2, 34.5, 49.8),
            ('RetinaNet', 'ResNet-101-FPN'): (39.1, 59.1, 42.3, 21.8, 42.7, 50.2),
            ('Faster R-CNN', 'ResNet-101-FPN'): (36.2, 59.1, 39.0, 18.2, 39.0, 48.2),
            ('Mask R-CNN', 'ResNet-101-FPN'): (38.2, 60.3, 41.7, 20.1, 41.1, 50.2),
            ('Libra R-CNN', 'ResNeXt-101-FPN'): (43.0, 64.0, 47.0, 25.3, 45.6, 54.6),
            ('Faster R-CNN*', 'ResNet-101-FPN'): (38.7, 60.8, 42.3, 22.3, 42.2, 48.5),
            ('Cascade R-CNN*', 'ResNet-101-FPN'): (42.1, 61.0, 46.0, 23.5, 45.5, 54.7),
            ('Faster R-CNN w/ RGA+PRM', 'ResNet-101-FPN'): (40.2, 62.1, 43.9, 23.4, 43.6, 50.7),
            ('Faster R-CNN w/ RGA+PRM', 'ResNeXt-101-FPN'): (42.9, 64.9, 46.7, 25.6, 46.2, 53.7),
            ('Cascade R-CNN w/ RGA+PRM', 'ResNet-101-FPN'): (43.1, 61.5, 47.0, 24.1, 46.1, 55.4),
            ('Cascade R-CNN w/ RGA+PRM', 'ResNeXt-101-FPN'): (45.3, 64.0, 49.5, 26.6, 48.1, 57.8),
        }),
    'table4': PaperTable(
        'Varying λ0 in RGA, with and without annealing (Faster R-CNN R50 1x)',
        ('λ0', 'Anneal'), ('AP', 'AP50', 'AP75'), {
            ('1', '-'): (36.1, 58.1, 38.8),
            ('7', '-'): (36.7, 58.5, None),
            ('3', '✓'): (36.9, 59.0, 40.2),
            ('5', '✓'): (37.2, 59.0, 40.8),
            ('7', '✓'): (37.3, 59.4, 40.6),
            ('9', '✓'): (37.2, 59.3, 40.0),
        }),
    'table5': PaperTable(
        'Varying the sampling ratios of the R-CNN modules (R = R-CNN, E = ensemble; '
        'Faster R-CNNx2 = two separate detectors)',
        ('method', 'R1 ratio', 'R2 ratio'), ('R1', 'R2', 'E'), {
            ('Faster R-CNN', '1:1', '-'): (36.3, None, None),
            ('Faster R-CNNx2', '1:1', '1:9'): (36.3, 34.9, 36.5),
            ('Faster R-CNN w/ PRM', '1:1', '1:1'): (36.7, 36.7, 36.8),
            ('Faster R-CNN w/ PRM', '1:1', '1:5'): (36.8, 36.9, 37.1),
            ('Faster R-CNN w/ PRM', '1:1', '1:9'): (37.0, 36.9, 37.3),
        }),
    'table6': PaperTable(
        'A third R-CNN module (ratio 1:3), with and without RGA',
        ('3rd R-CNN', 'w/ RGA'), ('AP', 'AP50', 'AP75'), {
            ('-', '-'): (37.3, 58.8, 40.4),
            ('✓', '-'): (37.1, 58.8, 40.1),
            ('-', '✓'): (38.1, 60.0, 41.6),
            ('✓', '✓'): (37.9, 59.6, 41.2),
        }),
    'table7': PaperTable(
        'CrowdHuman full body (mMR: lower is better)',
        ('method', ), ('mMR', 'AP50'), {
            ('Faster R-CNN Baseline in [23]', ): (None, None),
            ('Faster R-CNN*', ): (47.42, 85.02),
            ('Faster R-CNN w/ PRM', ): (46.30, 85.43),
            ('Faster R-CNN w/ RGA+PRM', ): (45.13, 86.37),
        }),
    'table8': PaperTable(
        'Hard vs soft sampling (Appendix A; AP, %)',
        ('sample ratio', ), ('hard method', 'soft method'), {
            ('1:1', ): (33.3, 36.3),
            ('1:3', ): (35.2, 36.1),
            ('1:5', ): (35.5, 35.7),
            ('1:7', ): (35.2, 35.4),
        }),
}

# Fig. 6 Right: share of head-score pairs whose absolute difference exceeds 0.1 (%).
FIG6_SHARE_DIFF_GT_01 = 21.9
