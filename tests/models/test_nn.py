"""The shared network blocks (scsynth_core/models/nn.py): known answers for layer order, conditional batch norm,
initialisation and row blocks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scsynth_core.errors import ConfigError
from scsynth_core.models.nn import (
    ConditionalBatchNorm,
    activate,
    activation_names,
    batchnorm_momentum,
    block_rows,
    dense_stack,
    linear,
    normed_forward,
    normed_layers,
)


def test_dense_stack_builds_the_layers_in_the_order_asked():
    flat = dense_stack([5, 4, 3], ("linear", "norm", "act"))
    assert [type(m) for m in flat] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2
    assert [m.weight.shape for m in flat if isinstance(m, nn.Linear)] == [(4, 5), (3, 4)]
    nested = dense_stack([5, 4, 3], ("linear", "act", "norm"), activation="leaky_relu", nested=True)
    assert [[type(m) for m in block] for block in nested] == [[nn.Linear, nn.LeakyReLU, nn.BatchNorm1d]] * 2
    assert nested[0][1].negative_slope == 0.2
    assert {"0.0.weight", "0.2.running_mean", "1.0.bias"} <= set(nested.state_dict())
    assert list(dense_stack([5, 4], ("linear", "act")).state_dict()) == ["0.weight", "0.bias"]


def test_layer_order_shows_in_the_output():
    """Training mode: norm last gives columns of mean 0 and variance 1; activation last gives no negatives."""
    torch.manual_seed(0)
    x = torch.randn(256, 6)
    norm_last = dense_stack([6, 8], ("linear", "act", "norm"))(x)
    assert torch.allclose(norm_last.mean(0), torch.zeros(8), atol=1e-5)
    assert torch.allclose(norm_last.var(0, unbiased=False), torch.ones(8), atol=1e-3)
    stack = dense_stack([6, 8], ("linear", "norm", "act"))
    y = stack[0](x)
    expected = torch.relu((y - y.mean(0)) / torch.sqrt(y.var(0, unbiased=False) + 1e-5))
    assert torch.allclose(stack(x), expected, atol=1e-5)


@pytest.mark.parametrize("order", [("norm", "linear"), ("linear", "act", "act"), ("linear", "dropout"), ()])
def test_dense_stack_refuses_other_orders(order):
    with pytest.raises(ConfigError, match="layer order"):
        dense_stack([3, 2], order)


def test_conditional_batch_norm_gives_each_class_its_scale_and_shift():
    torch.manual_seed(0)
    x, labels = torch.randn(300, 3) * 4 + 7, torch.arange(300) % 3
    bn = ConditionalBatchNorm(3, n_classes=3, momentum=0.1, eps=1e-5)
    with torch.no_grad():
        bn.scale.copy_(torch.tensor([[1.0, 1.0, 1.0], [2.0, 3.0, 4.0], [0.5, 0.5, 0.5]]))
        bn.shift.copy_(torch.tensor([[0.0, 0.0, 0.0], [-1.0, 1.0, 5.0], [10.0, 10.0, 10.0]]))
    out = bn(x, labels)
    normed = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)  # the whole batch's statistics
    for k in range(3):
        assert torch.allclose(out[labels == k], normed[labels == k] * bn.scale[k] + bn.shift[k], atol=1e-5)
    assert torch.allclose(bn.running_mean, 0.1 * x.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, 0.9 + 0.1 * x.var(0, unbiased=False), atol=1e-4)
    # a class without cells in the batch gets no gradient in its table rows
    bn(x[labels != 2], labels[labels != 2]).sum().backward()
    assert torch.all(bn.scale.grad[2] == 0) and torch.all(bn.scale.grad[:2] != 0)
    with pytest.raises(ConfigError, match="labels"):
        bn(x)


def test_unconditional_batch_norm_output_has_the_learned_mean_and_spread():
    x = torch.randn(500, 4, generator=torch.Generator().manual_seed(1)) * 3 - 2
    bn = ConditionalBatchNorm(4, momentum=0.01, eps=1e-3)
    with torch.no_grad():
        bn.scale.fill_(2.0), bn.shift.fill_(-1.0)
    out = bn(x)
    assert torch.allclose(out.mean(0), torch.full((4,), -1.0), atol=1e-5)
    assert torch.allclose(out.std(0, unbiased=False), torch.full((4,), 2.0), atol=1e-3)
    bn.eval()  # evaluation: the running averages, not the batch
    expected = (x - bn.running_mean) / torch.sqrt(bn.running_var + 1e-3) * 2 - 1
    assert torch.allclose(bn(x), expected, atol=1e-5)


def test_glorot_linear_is_uniform_within_the_glorot_bound_with_zero_bias():
    torch.manual_seed(0)
    layer = linear(400, 600, init="glorot")
    bound = math.sqrt(6 / (400 + 600))
    w = layer.weight
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.01)  # sd of U(-b, b)
    assert torch.all(layer.bias == 0)
    assert linear(4, 3, bias=False).bias is None


def test_fan_avg_linear_is_a_normal_cut_at_two_sd():
    torch.manual_seed(0)
    w = linear(400, 600, init="fan_avg").weight
    sd = math.sqrt(1.3 * 2 / ((400 + 600) / 2))
    assert w.abs().max() <= 2 * sd and w.abs().max() > 1.99 * sd
    assert w.std().item() == pytest.approx(sd * 0.8796, rel=0.01)  # sd of N(0, 1) cut at +-2
    with pytest.raises(ConfigError, match="weight init"):
        linear(4, 3, init="he")


def test_linear_draws_torch_default_init_first():
    """Seeded fits stay bit for bit: torch's default initialisation runs, then the re-initialisation."""
    torch.manual_seed(3)
    ours = linear(7, 5, init="glorot")
    torch.manual_seed(3)
    reference = nn.Linear(7, 5)
    nn.init.xavier_uniform_(reference.weight)
    assert torch.equal(ours.weight, reference.weight)


def test_activations():
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.equal(activate(x, "relu"), torch.tensor([0.0, 0.0, 3.0]))
    assert torch.allclose(activate(x, "leaky_relu"), torch.tensor([-0.4, 0.0, 3.0]))
    assert activation_names(None, 2) == ("relu", "relu")
    with pytest.raises(ConfigError, match="activations must be 2"):
        activation_names(["relu"], 2)


def test_block_rows_known_answers():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")  # a device name only: no GPU needed
    assert block_rows(1000, cpu, cpu_floats=1 << 22) == 4194  # 2^22 // 1000
    assert block_rows(1000, cpu, cpu_floats=1 << 23, multiple=64) == 8384  # 8388 down to a multiple of 64
    assert block_rows(1000, gpu, cpu_floats=1 << 22) == 67108  # 2^26 // 1000
    assert block_rows(10**7, cpu, cpu_floats=1 << 22) == 64  # at least 64 rows


def test_normed_layers_run_linear_norm_activation_then_dropout():
    linears, norms = normed_layers([3, 3, 2], n_classes=2, momentum=0.1, eps=1e-5)
    assert [layer.bias for layer in linears] == [None, None]
    assert [tuple(norm.scale.shape) for norm in norms] == [(2, 3), (2, 2)]
    with torch.no_grad():
        linears[0].weight.copy_(torch.eye(3))
    x, labels = torch.randn(400, 3, generator=torch.Generator().manual_seed(2)) * 2 + 1, torch.arange(400) % 2
    z = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)
    first = normed_forward(x, linears[:1], norms[:1], ["leaky_relu"], dropout=0.0, training=True, labels=labels)
    assert torch.allclose(first, torch.where(z > 0, z, 0.2 * z), atol=1e-5)
    dropped = normed_forward(x, linears[:1], norms[:1], ["relu"], dropout=0.5, training=True, labels=labels)
    kept = dropped != 0
    assert torch.allclose(dropped[kept], 2 * z[kept], atol=1e-5)  # survivors scaled by 1 / (1 - p)
    assert 0.2 < kept.float().mean() < 0.35  # about half of the positive half
    for norm in norms:
        norm.eval()
    relu = ["relu", "relu"]
    out = normed_forward(x, linears, norms, relu, dropout=0.5, training=False, labels=labels)
    assert out.shape == (400, 2) and torch.all(out >= 0)  # no dropout outside training:
    assert torch.equal(out, normed_forward(x, linears, norms, relu, dropout=0.0, training=False, labels=labels))


def test_batchnorm_momentum_freezes_or_averages_and_restores_even_on_error():
    net = dense_stack([3, 4, 2], ("linear", "norm", "act"))
    x = torch.randn(8, 3)
    with batchnorm_momentum(net, 0.0) as norms:
        assert len(norms) == 2 and all(m.momentum == 0.0 for m in norms)
        net(x)
    assert all(m.momentum == 0.1 for m in norms)  # torch's default back
    assert torch.equal(norms[0].running_mean, torch.zeros(4))  # frozen: the pass changed nothing
    with pytest.raises(RuntimeError), batchnorm_momentum(net, None):
        raise RuntimeError("in the block")
    assert all(m.momentum == 0.1 for m in norms)
