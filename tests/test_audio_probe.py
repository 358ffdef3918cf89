"""The linear CTC probe of `hf_vqvae.audio_probe`: its text handling, greedy decoding and error rate against hand
computations, and that it learns an alignment it is never given."""

from __future__ import annotations

import math

import pytest
import torch

from hf_vqvae.audio_probe import (
    character_error_rate,
    character_vocabulary,
    ctc_greedy_decode,
    edit_distance,
    encode_transcript,
    normalise_transcript,
    probe_transcripts,
    train_ctc_probe,
)


def test_transcripts_become_character_ids():
    assert normalise_transcript("Ahoj,  SVĚTE! 42 -- Привет.") == "ahoj světe привет"
    vocabulary = character_vocabulary(["Ab, c!", "cd"])
    assert vocabulary == [" ", "a", "b", "c", "d"]  # id 0 is the blank, so " " is 1
    assert encode_transcript("B a?é", vocabulary) == [3, 1, 2]  # "b a": é is not in the vocabulary


def test_greedy_decoding_edit_distance_and_cer_against_hand_computation():
    # Best path blank, 1, 1, blank, 1, 2, 2, blank -> merge repeats, drop blanks -> 1, 1, 2.
    path = torch.tensor([0, 1, 1, 0, 1, 2, 2, 0])
    assert ctc_greedy_decode(torch.nn.functional.one_hot(path, 3).float().log()) == [1, 1, 2]
    assert edit_distance("kitten", "sitting") == 3  # k->s, e->i, +g
    assert edit_distance([], [1, 2]) == 2 and edit_distance([1, 2], [1, 2]) == 0
    # (1 substitution + 2 deletions) over 3 + 2 reference characters.
    assert character_error_rate([[1, 9, 3], []], [[1, 2, 3], [4, 5]]) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        character_error_rate([[1], [2]], [[1]])


def test_probe_learns_an_alignment_it_is_never_given():
    """Each character sounds as 2-4 frames of its own vector, with silent frames in between; the probe sees only
    the sequences and the character ids, and must spell held-out sequences."""
    generator = torch.Generator().manual_seed(0)
    vocabulary_size, dim = 5, 8
    voices = torch.randn(vocabulary_size + 1, dim, generator=generator)

    def utterance() -> tuple[torch.Tensor, list[int]]:
        characters = torch.randint(1, vocabulary_size + 1, (6,), generator=generator).tolist()
        frames = []
        for c in characters:
            frames += [voices[0]] * int(torch.randint(1, 3, (1,), generator=generator))
            frames += [voices[c]] * int(torch.randint(2, 5, (1,), generator=generator))
        frames = torch.stack(frames + [voices[0]]).T
        return frames + 0.1 * torch.randn(frames.shape, generator=generator), characters

    train = [utterance() for _ in range(64)]
    test = [utterance() for _ in range(16)]
    probe = train_ctc_probe([s for s, _ in train], [t for _, t in train], vocabulary_size, context=1, steps=150)
    cer = character_error_rate(probe_transcripts(probe, [s for s, _ in test]), [t for _, t in test])
    assert cer < 0.1, cer
    shuffled = [t for _, t in train][1:] + [train[0][1]]
    control = train_ctc_probe([s for s, _ in train], shuffled, vocabulary_size, context=1, steps=150)
    control_cer = character_error_rate(probe_transcripts(control, [s for s, _ in test]), [t for _, t in test])
    assert control_cer > 0.5 and math.isfinite(control_cer), control_cer
    with pytest.raises(ValueError, match="no utterance"):
        train_ctc_probe([torch.zeros(dim, 2)], [[1, 2, 3]], vocabulary_size)
