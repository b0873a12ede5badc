"""RGA: the optimizer step equals the paper's Appendix B update."""
import copy
import functools

import pytest
import torch
from mmengine.optim import OptimWrapper
from torch import nn

from prm_rga import AmpRGAOptimWrapper, RGAOptimWrapper, rga_lambda
from prm_rga.errors import InputError


class ToyDetector(nn.Module):
    """Parameter names as in an mmdet two-stage detector."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Linear(4, 4)
        self.rpn_head = nn.Linear(4, 2)
        self.roi_head = nn.Module()
        self.roi_head.bbox_head = nn.ModuleList([nn.Linear(4, 3), nn.Linear(4, 3)])

    def loss(self, x):
        feat = self.backbone(x)
        return (self.rpn_head(feat).pow(2).sum() +
                sum(h(feat).pow(2).sum() for h in self.roi_head.bbox_head))


def appendix_b_step(model, x, t, T, lr, lambda0=7.0, max_norm=None):
    """The paper's code: backward, scale bbox-head grads, clip, SGD step."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    opt.zero_grad()
    model.loss(x).backward()
    weight = lambda0 - (lambda0 - 1) * t / T
    for name, p in model.named_parameters():
        if name.startswith('roi_head.bbox_head.'):
            p.grad *= weight
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()


def wrapper_step(model, wrapper, x):
    wrapper.update_params(model.loss(x))


@pytest.mark.parametrize('t', [0, 1, 37, 99])
@pytest.mark.parametrize('max_norm', [None, 0.5])
def test_step_matches_appendix_b(t, max_norm):
    T, lr = 100, 0.1
    x = torch.randn(8, 4)
    ref, ours = ToyDetector(), ToyDetector()
    appendix_b_step(ref, x, t, T, lr, max_norm=max_norm)
    wrapper = RGAOptimWrapper(
        optimizer=torch.optim.SGD(ours.parameters(), lr=lr), lambda0=7.0,
        clip_grad=dict(max_norm=max_norm) if max_norm else None)
    wrapper.initialize_count_status(ours, t, T)
    wrapper_step(ours, wrapper, x)
    for (name, a), b in zip(ref.named_parameters(), ours.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7, msg=name)
    assert wrapper.message_hub.get_scalar('train/lambda').current() == pytest.approx(
        7 - 6 * t / T)


def test_heads_are_scaled_before_clipping_where_clipping_binds():
    """Appendix B's order, scale then clip then step, on a step where the clip binds: the other
    order (clip, then scale the clipped head gradients) gives other weights."""
    T, t, lr, max_norm = 100, 0, 0.1, 0.5
    x = torch.randn(8, 4)
    probe = ToyDetector()
    probe.loss(x).backward()
    for name, p in probe.named_parameters():
        if name.startswith('roi_head.bbox_head.'):
            p.grad *= 7.0
    assert torch.nn.utils.clip_grad_norm_(probe.parameters(), float('inf')) > 4 * max_norm

    ref, ours, other = ToyDetector(), ToyDetector(), ToyDetector()
    appendix_b_step(ref, x, t, T, lr, max_norm=max_norm)
    wrapper = RGAOptimWrapper(optimizer=torch.optim.SGD(ours.parameters(), lr=lr),
                              lambda0=7.0, clip_grad=dict(max_norm=max_norm))
    wrapper.initialize_count_status(ours, t, T)
    wrapper_step(ours, wrapper, x)
    for (name, a), b in zip(ref.named_parameters(), ours.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7, msg=name)

    opt = torch.optim.SGD(other.parameters(), lr=lr)
    other.loss(x).backward()
    torch.nn.utils.clip_grad_norm_(other.parameters(), max_norm)
    for name, p in other.named_parameters():
        if name.startswith('roi_head.bbox_head.'):
            p.grad *= 7.0
    opt.step()
    assert not torch.allclose(other.backbone.weight, ours.backbone.weight, atol=1e-4)


def test_only_head_gradients_scaled():
    x = torch.randn(8, 4)
    plain, rga = ToyDetector(), ToyDetector()
    plain.loss(x).backward()
    wrapper = RGAOptimWrapper(optimizer=torch.optim.SGD(rga.parameters(), lr=0.0), lambda0=5.0)
    wrapper.initialize_count_status(rga, 0, 10)
    wrapper.backward(rga.loss(x))
    wrapper.step()
    for (name, p), q in zip(plain.named_parameters(), rga.parameters()):
        factor = 5.0 if name.startswith('roi_head.bbox_head.') else 1.0
        torch.testing.assert_close(q.grad, p.grad * factor, msg=name)


def test_constant_lambda_without_annealing():
    assert [rga_lambda(t, 10, 7.0, anneal=False) for t in (0, 5, 10)] == [7.0, 7.0, 7.0]
    assert [rga_lambda(t, 10, 7.0) for t in (0, 5, 10)] == [7.0, 4.0, 1.0]
    model = ToyDetector()
    wrapper = RGAOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                              lambda0=7.0, anneal=False)
    wrapper.initialize_count_status(model, 0, 4)
    for _ in range(4):
        wrapper_step(model, wrapper, torch.randn(2, 4))
        assert wrapper.message_hub.get_scalar('train/lambda').current() == 7.0


def test_lambda_one_is_bit_identical_to_plain_optim_wrapper():
    plain, rga = ToyDetector(), ToyDetector()
    w_plain = OptimWrapper(optimizer=torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9))
    w_rga = RGAOptimWrapper(optimizer=torch.optim.SGD(rga.parameters(), lr=0.1, momentum=0.9),
                            lambda0=1.0)
    w_plain.initialize_count_status(plain, 0, 5)
    w_rga.initialize_count_status(rga, 0, 5)
    torch.manual_seed(1)
    for _ in range(5):
        x = torch.randn(8, 4)
        wrapper_step(plain, w_plain, x)
        wrapper_step(rga, w_rga, x)
    for a, b in zip(plain.parameters(), rga.parameters()):
        assert torch.equal(a, b)


def test_schedule_continues_after_resume():
    """The Runner re-initialises the counters from the resumed iteration."""
    x = torch.randn(8, 4)
    full, resumed = ToyDetector(), ToyDetector()
    w_full = RGAOptimWrapper(optimizer=torch.optim.SGD(full.parameters(), lr=0.001))
    w_full.initialize_count_status(full, 0, 6)
    lambdas = []
    for _ in range(6):
        wrapper_step(full, w_full, x)
        lambdas.append(w_full.message_hub.get_scalar('train/lambda').current())
    assert lambdas == pytest.approx([7 - 6 * t / 6 for t in range(6)])

    w_first = RGAOptimWrapper(optimizer=torch.optim.SGD(resumed.parameters(), lr=0.001))
    w_first.initialize_count_status(resumed, 0, 6)
    for _ in range(3):
        wrapper_step(resumed, w_first, x)
    state = copy.deepcopy(resumed.state_dict())
    resumed.load_state_dict(state)
    w_second = RGAOptimWrapper(optimizer=torch.optim.SGD(resumed.parameters(), lr=0.001))
    w_second.initialize_count_status(resumed, 3, 6)
    for t in range(3, 6):
        wrapper_step(resumed, w_second, x)
        assert w_second.message_hub.get_scalar('train/lambda').current() == pytest.approx(
            lambdas[t])
    for a, b in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)


def test_bad_settings_are_named():
    model = ToyDetector()
    with pytest.raises(InputError, match='lambda0'):
        RGAOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), lambda0=0.5)
    wrapper = RGAOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                              head_prefixes=('roi_head.mask_head.', ))
    with pytest.raises(InputError, match='head_prefixes'):
        wrapper.initialize_count_status(model, 0, 10)


def test_amp_wrapper_step_matches_appendix_b(monkeypatch):
    """AmpRGAOptimWrapper (experiments.suites picks it for an AMP config) with a real loss
    scaler, on CPU: the step of Appendix B on a step where the clip binds, the loss scale
    cancelled (λ scales the scaled gradients, the scaler unscales before clipping)."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    monkeypatch.setattr(amp_optimizer_wrapper, 'GradScaler',
                        functools.partial(torch.amp.GradScaler, 'cpu'))
    T, t, lr, max_norm = 100, 10, 0.1, 0.5
    x = torch.randn(8, 4)
    ref, ours = ToyDetector(), ToyDetector()
    appendix_b_step(ref, x, t, T, lr, max_norm=max_norm)
    wrapper = AmpRGAOptimWrapper(optimizer=torch.optim.SGD(ours.parameters(), lr=lr),
                                 lambda0=7.0, loss_scale=1024.0, clip_grad=dict(max_norm=max_norm))
    wrapper.initialize_count_status(ours, t, T)
    wrapper_step(ours, wrapper, x)
    assert wrapper.loss_scaler.get_scale() == 1024.0  # the step was taken, not skipped
    for (name, a), b in zip(ref.named_parameters(), ours.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    assert wrapper.message_hub.get_scalar('train/lambda').current() == pytest.approx(
        7 - 6 * t / T)
