"""The WaveNet decoder: mu-law maths, causality, receptive field, and Fast WaveNet generation equal to the naive
re-run."""

from __future__ import annotations

import math

import pytest
import torch

from hf_vqvae.wavenet import WaveNet, mu_law_decode, mu_law_encode


@pytest.fixture(autouse=True)
def one_thread():
    """Sample-by-sample generation is thousands of tiny ops: a second thread only adds synchronisation, which on a
    busy machine costs more than the op (20x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_wavenet(**overrides) -> WaveNet:
    torch.manual_seed(0)
    options = dict(
        residual_channels=8, gate_channels=8, skip_channels=16, kernel_size=3, num_layers=5, dilation_cycle=3,
        local_channels=4, global_channels=3, upsample_factor=4,
    )  # fmt: skip
    return WaveNet(**{**options, **overrides}).eval()


def test_mu_law_against_hand_computation():
    mu = 255
    x = torch.tensor([-1.0, -0.5, 0.0, 0.01, 0.5, 1.0, 3.0])
    expected = []
    for value in x.clamp(-1, 1).tolist():
        companded = math.copysign(math.log(1 + mu * abs(value)) / math.log(1 + mu), value)
        expected.append(math.floor((companded + 1) / 2 * mu + 0.5))
    assert mu_law_encode(x).tolist() == expected
    assert expected[2] == 128 and expected[0] == 0 and expected[-1] == 255
    # Decoding inverts encoding up to the rounding: within one level's width of the input.
    grid = torch.linspace(-1, 1, 2001)
    decoded = mu_law_decode(mu_law_encode(grid))
    step = (1 + mu) ** (1 / mu) - 1  # relative width of a level, at most
    assert torch.all((decoded - grid).abs() <= step * grid.abs() + 2 / mu / 2)
    assert mu_law_decode(torch.tensor([0, 255])).tolist() == [-1.0, 1.0]


def test_causal_and_receptive_field():
    """A change of the sample at time s moves no output at or before s, moves the next one, and moves nothing
    beyond s + receptive_field."""
    net = tiny_wavenet()
    # kernel 3, dilations 1, 2, 4, 1, 2: history 2 * (1 + 2 + 4 + 1 + 2) = 20, plus the input shift.
    assert net.receptive_field == 21
    local, speaker = torch.randn(2, 4, 16), torch.randn(2, 3)
    x = torch.randint(0, 256, (2, 64))
    s = 17
    changed = x.clone()
    changed[:, s] = (changed[:, s] + 100) % 256
    with torch.no_grad():
        before, after = net(x, local, speaker), net(changed, local, speaker)
    moved = (before - after).abs().amax(dim=(0, 1))
    assert torch.equal(before[..., : s + 1], after[..., : s + 1])
    assert moved[s + 1] > 0
    assert moved[s + net.receptive_field] > 0
    assert torch.all(moved[s + net.receptive_field + 1 :] == 0)


def test_conditioning_is_used():
    """Local conditioning at latent rate reaches exactly its upsample_factor samples; the global vector all."""
    net = tiny_wavenet()
    local, speaker = torch.randn(1, 4, 8), torch.randn(1, 3)
    x = torch.randint(0, 256, (1, 32))
    changed = local.clone()
    changed[:, :, 5] += 1.0
    with torch.no_grad():
        base = net(x, local, speaker)
        moved = (base - net(x, changed, speaker)).abs().amax(dim=(0, 1))
        other_speaker = (base - net(x, local, speaker + 1)).abs().amax(dim=(0, 1))
    assert torch.all(moved[:20] == 0) and torch.all(moved[20:24] > 0)  # frame 5 covers samples 20..23 directly
    assert torch.all(other_speaker > 0)
    with pytest.raises(ValueError, match="local_condition"):
        net(x, None, speaker)
    with pytest.raises(ValueError, match="covers"):
        net(torch.randint(0, 256, (1, 40)), local, speaker)


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_cached_generation_equals_naive_rerun(temperature):
    net = tiny_wavenet()
    local, speaker = torch.randn(2, 4, 12), torch.randn(2, 3)
    cached = net.generate(local, speaker, temperature=temperature, generator=torch.Generator().manual_seed(7))
    naive = net.generate(
        local, speaker, temperature=temperature, generator=torch.Generator().manual_seed(7), use_cache=False
    )
    assert cached.shape == (2, 48)
    assert torch.equal(cached, naive)
    # The samples are what the teacher-forced model assigns its highest probability to (at temperature 0), and
    # are not all one class.
    if temperature == 0:
        with torch.no_grad():
            assert torch.equal(net(cached, local, speaker).argmax(1), cached)
    else:
        assert len(cached.unique()) > 10
    other = net.generate(local, speaker, temperature=temperature, generator=torch.Generator().manual_seed(8))
    assert temperature == 0 or not torch.equal(cached, other)
