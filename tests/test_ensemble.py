"""Table 5's "Faster R-CNN x2": two detectors as one proposal-level ensemble."""
import copy

import pytest
import torch

from conftest import config, image_sample
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from prm_rga.errors import InputError

TINY = 'tiny/faster-rcnn_tiny_synth.py'


def batch(num_imgs=2, size=128):
    g = torch.Generator().manual_seed(0)
    samples = [image_sample(size) for _ in range(num_imgs)]
    return torch.randn(num_imgs, 3, size, size, generator=g), samples


def test_ensemble_of_identical_detectors_is_the_detector(tmp_path):
    cfg = config(TINY).model
    torch.manual_seed(0)
    single = MODELS.build(copy.deepcopy(cfg)).eval()
    path = tmp_path / 'a.pth'
    torch.save({'state_dict': single.state_dict()}, path)
    ensemble = MODELS.build(dict(type='ProposalEnsemble', detectors=[cfg, cfg],
                                 checkpoints=[str(path), str(path)])).eval()
    inputs, samples = batch()
    with torch.no_grad():
        ref = single.predict(inputs, copy.deepcopy(samples))
        out = ensemble.predict(inputs, copy.deepcopy(samples))
    for a, b in zip(ref, out):
        assert len(a.pred_instances) > 0
        torch.testing.assert_close(b.pred_instances.scores, a.pred_instances.scores)
        torch.testing.assert_close(b.pred_instances.bboxes, a.pred_instances.bboxes)


def test_ensemble_averages_logits_of_different_detectors():
    cfg = config(TINY).model
    torch.manual_seed(0)
    ensemble = MODELS.build(dict(type='ProposalEnsemble', detectors=[cfg, cfg])).eval()
    inputs, samples = batch()
    a, b = ensemble.detectors
    with torch.no_grad():
        feats = [a.extract_feat(inputs), b.extract_feat(inputs)]
        proposals = a.rpn_head.predict(feats[0], samples, rescale=False)
        rois = bbox2roi([p.bboxes for p in proposals])
        la = a.roi_head._bbox_forward(feats[0], rois)['cls_score']
        lb = b.roi_head._bbox_forward(feats[1], rois)['cls_score']
        a.roi_head.test_cfg = None  # scores of every proposal, no NMS
        out = ensemble.predict(inputs, samples)
    n = len(proposals[0])
    torch.testing.assert_close(out[0].pred_instances.scores,
                               torch.softmax((la + lb) / 2, -1)[:n])


def test_a_checkpoint_of_another_config_is_refused_naming_file_and_keys(tmp_path):
    """Strict loading: PRM weights for a single-head member would leave its head random."""
    cfg = config(TINY).model
    prm = MODELS.build(config('tiny/faster-rcnn_tiny_prm_synth.py').model)
    path = tmp_path / 'prm.pth'
    torch.save({'state_dict': prm.state_dict()}, path)
    with pytest.raises(InputError) as err:
        MODELS.build(dict(type='ProposalEnsemble', detectors=[cfg, cfg],
                          checkpoints=[str(path), str(path)]))
    message = str(err.value)
    assert 'model.checkpoints[0]' in message and str(path) in message
    assert 'roi_head.bbox_head.fc_cls.weight' in message  # missing
    assert 'roi_head.bbox_head.0.fc_cls.weight' in message  # unexpected
    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint')
    with pytest.raises(InputError, match=r'checkpoints\[0\].*notes.txt'):
        MODELS.build(dict(type='ProposalEnsemble', detectors=[cfg, cfg],
                          checkpoints=[str(text), str(text)]))


def test_bad_ensemble_settings():
    cfg = config(TINY).model
    with pytest.raises(InputError, match='at least two'):
        MODELS.build(dict(type='ProposalEnsemble', detectors=[cfg]))
    with pytest.raises(InputError, match=r'checkpoints\[0\]'):
        MODELS.build(dict(type='ProposalEnsemble', detectors=[cfg, cfg],
                          checkpoints=['/nonexistent/a.pth', '/nonexistent/b.pth']))
