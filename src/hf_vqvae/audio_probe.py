"""A linear CTC probe: how much of an utterance's transcript its speech codes carry (issue 14; the VQ-VAE paper's
observation that the speech latents are phonetic).

The paper maps each latent to the phoneme it most often overlaps, which needs frame-level alignments. The speech
data here has per-utterance transcripts and no alignments, so the probe learns the alignment itself with CTC
(Graves et al. 2006): a single linear map from a window of code vectors to characters plus a blank, trained on the
training utterances and scored by character error rate (CER) on held-out ones. A control probe learns from the same
codes with the transcripts shuffled across utterances: it can learn the characters' frequencies and nothing that
ties them to the audio, so the gap between the two CERs is what the codes say about the words.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

BLANK = 0


def normalise_transcript(text: str) -> str:
    """Lower-case letters and single spaces (NFC): punctuation and digits carry no sound of their own."""
    text = unicodedata.normalize("NFC", text.lower())
    kept = "".join(c if c.isalpha() else " " for c in text)
    return " ".join(kept.split())


def character_vocabulary(transcripts: Sequence[str]) -> list[str]:
    """The sorted characters of the normalised `transcripts`; id 0 is CTC's blank, so character i has id i + 1."""
    return sorted({c for text in transcripts for c in normalise_transcript(text)})


def encode_transcript(text: str, vocabulary: Sequence[str]) -> list[int]:
    """Character ids (1-based; characters outside `vocabulary` dropped) of the normalised `text`."""
    index = {c: i + 1 for i, c in enumerate(vocabulary)}
    kept = " ".join("".join(c for c in normalise_transcript(text) if c in index or c == " ").split())
    return [index[c] for c in kept if c in index]


def ctc_greedy_decode(log_probs: torch.Tensor) -> list[int]:
    """Best path of `log_probs` `(T, V + 1)`: the argmax per frame, repeats merged, blanks removed."""
    best = log_probs.argmax(-1).tolist()
    return [c for i, c in enumerate(best) if c != BLANK and (i == 0 or c != best[i - 1])]


def edit_distance(hypothesis: Sequence, reference: Sequence) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions turning one into the other."""
    previous = list(range(len(reference) + 1))
    for i, h in enumerate(hypothesis, 1):
        current = [i]
        for j, r in enumerate(reference, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (h != r)))
        previous = current
    return previous[-1]


def character_error_rate(hypotheses: Sequence[Sequence], references: Sequence[Sequence]) -> float:
    """Total edit distance over total reference length (1.0 for a probe that outputs nothing)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("the references hold no characters")
    return sum(edit_distance(h, r) for h, r in zip(hypotheses, references)) / total


class LinearCTCProbe(nn.Module):
    """Code vectors `(B, D, T)` -> log-probabilities `(B, T, V + 1)` over a blank and V characters: one linear map of
    the `2 * context + 1` code vectors around each frame (a 1-D convolution, which is linear in its window)."""

    def __init__(self, embedding_dim: int, vocabulary_size: int, context: int = 4) -> None:
        super().__init__()
        self.linear = nn.Conv1d(embedding_dim, vocabulary_size + 1, 2 * context + 1, padding=context)

    def forward(self, code_vectors: torch.Tensor) -> torch.Tensor:
        return self.linear(code_vectors).transpose(1, 2).log_softmax(-1)


def _batch(sequences: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """`(D, T_i)` sequences -> zero-padded `(B, D, T_max)` and their lengths `(B,)`."""
    lengths = torch.tensor([s.shape[-1] for s in sequences])
    padded = torch.zeros(len(sequences), sequences[0].shape[0], int(lengths.max()))
    for i, s in enumerate(sequences):
        padded[i, :, : s.shape[-1]] = s
    return padded, lengths


def train_ctc_probe(
    sequences: Sequence[torch.Tensor],
    targets: Sequence[Sequence[int]],
    vocabulary_size: int,
    context: int = 4,
    steps: int = 600,
    batch_size: int = 32,
    learning_rate: float = 1e-2,
    seed: int = 0,
    progress: bool = False,
) -> LinearCTCProbe:
    """Fits a `LinearCTCProbe` to code-vector sequences `(D, T_i)` and their character ids by CTC (`progress`: a
    tqdm bar with the loss)."""
    usable = [i for i, (s, t) in enumerate(zip(sequences, targets)) if 0 < len(t) <= s.shape[-1]]
    if not usable:
        raise ValueError("no utterance has a non-empty transcript no longer than its code sequence")
    torch.manual_seed(seed)
    probe = LinearCTCProbe(sequences[0].shape[0], vocabulary_size, context)
    optimizer = torch.optim.Adam(probe.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    bar = tqdm(range(steps), desc="CTC probe", disable=not progress)
    for _ in bar:
        chosen = [usable[i] for i in torch.randint(len(usable), (batch_size,), generator=generator)]
        inputs, lengths = _batch([sequences[i] for i in chosen])
        labels = [torch.tensor(targets[i]) for i in chosen]
        loss = F.ctc_loss(
            probe(inputs).transpose(0, 1), torch.cat(labels), lengths, torch.tensor([len(t) for t in labels]),
            blank=BLANK, zero_infinity=True,
        )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress:
            bar.set_postfix(loss=f"{loss.detach().item():.3f}", refresh=False)
    return probe.eval()


@torch.no_grad()
def probe_transcripts(probe: LinearCTCProbe, sequences: Sequence[torch.Tensor]) -> list[list[int]]:
    """The probe's greedy character ids for each code-vector sequence `(D, T_i)`."""
    return [ctc_greedy_decode(probe(s[None])[0]) for s in sequences]


__all__ = [
    "LinearCTCProbe",
    "character_error_rate",
    "character_vocabulary",
    "ctc_greedy_decode",
    "edit_distance",
    "encode_transcript",
    "normalise_transcript",
    "probe_transcripts",
    "train_ctc_probe",
]
