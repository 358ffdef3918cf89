"""`AudioTask` (`scripts/train.py --model audio_vqvae`): the audio VQ-VAE on a speech dataset of
`prepare_data.py --source speech` (or any dataset with an `Audio` column and a speaker `ClassLabel`).

Training reads random `segment_samples` crops of each utterance (decoded, mixed to mono and resampled in DataLoader
workers by `AudioCollator`; bad audio is skipped and counted); evaluation reads the middle crop of each held-out
utterance and reports the NLL in nats and bits per sample, the mu-law unigram baseline on the same samples, and
codebook perplexity and usage.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import AutoModel

from ..audio_metrics import mu_law_histogram, unigram_nll
from ..configuration_audio_vqvae import AudioVQVAEConfig
from ..data import DatasetError, SkipLog, training_loaders
from ..data.audio import AudioCollator, open_audio_dataset
from ..feature_extraction_audio import VQVAEAudioFeatureExtractor
from ..modeling_audio_vqvae import AudioVQVAEModel


class AudioTask:
    """The audio VQ-VAE on speech: speakers come from the dataset's speaker `ClassLabel` (`--label_column`)."""

    def __init__(self, args) -> None:
        self.args = args
        # The one opener of speech datasets (as extract_codes.py reads them): audio stays undecoded, AudioCollator
        # decodes in the workers and skips bad files.
        self.data, self.audio_column = open_audio_dataset(
            args.dataset, label_column=args.label_column, train_split=args.train_split, eval_split=args.eval_split,
            validation_split_percentage=args.validation_split_percentage, what="--model audio_vqvae",
        )  # fmt: skip
        if args.model_name_or_path:
            self.model = AutoModel.from_pretrained(args.model_name_or_path, **args.model_config)
        else:
            speakers = self.data.class_names
            defaults = {"num_speakers": len(speakers), "speaker_names": speakers} if speakers else {"num_speakers": 0}
            self.model = AudioVQVAEModel(AudioVQVAEConfig(**{**defaults, **args.model_config}))
        config = self.model.config
        if config.num_speakers and not self.data.label_column:
            raise DatasetError(
                f"the model is conditioned on {config.num_speakers} speakers but --dataset {args.dataset} has no "
                "speaker column (a ClassLabel; name it with --label_column)"
            )
        self.feature_extractor = VQVAEAudioFeatureExtractor(
            sampling_rate=config.sampling_rate, pad_to_multiple_of=config.downsample_factor
        )
        self.collate = AudioCollator(
            self.feature_extractor, self.audio_column, self.data.label_column if config.num_speakers else None,
            segment_samples=config.segment_samples, random_crop=False,
        )  # fmt: skip

    def loaders(self, rank: int, world_size: int) -> tuple[DataLoader, DataLoader, SkipLog]:
        args = self.args
        train, evaluation, log = training_loaders(
            self.data, self.collate, rank=rank, world_size=world_size, batch_size=args.per_device_train_batch_size,
            eval_batch_size=args.per_device_eval_batch_size, seed=args.seed, shuffle_buffer=args.shuffle_buffer,
            num_workers=args.num_workers, eval_samples=args.eval_samples,
        )  # fmt: skip
        # Training sees a random crop of each utterance, evaluation always the middle one.
        random_crops = copy.copy(train.collate_fn)
        random_crops.random_crop = True
        train.collate_fn = random_crops
        return train, evaluation, log

    @staticmethod
    def batch_size(batch: dict[str, Any]) -> int:
        return len(batch["input_values"])

    @staticmethod
    def forward(model, batch: dict[str, Any], device: torch.device):
        speakers = batch["speaker_ids"]
        return model(
            input_values=batch["input_values"].to(device),
            speaker_ids=None if speakers is None else speakers.to(device),
            attention_mask=batch["attention_mask"].to(device),
        )

    @staticmethod
    def train_logs(output) -> dict[str, float]:
        return {
            "train/bits_per_sample": output.nll.item() / math.log(2),
            "train/perplexity": output.perplexity.item(),
            "train/codebook_usage": output.codebook_usage.item(),
        }

    @torch.no_grad()
    def evaluate(self, model, loader: DataLoader, accelerator, pictures: Path | None) -> dict[str, float]:
        """NLL (nats and bits per sample), the unigram baseline on the same samples, and the code histogram's
        perplexity, over the evaluation crops, summed over ranks. No pictures or WAVs here: sampling the WaveNet
        would take longer than the evaluation itself (`scripts/run_demo_audio.py` writes them once, at the end)."""
        return evaluate_audio_model(model, loader, accelerator)

    def save(self, model, output_dir: Path) -> None:
        model.save_pretrained(output_dir)
        self.feature_extractor.save_pretrained(output_dir)


@torch.no_grad()
def evaluate_audio_model(model, loader, accelerator=None) -> dict[str, float]:
    """`eval/nll` (nats per sample), `eval/bits_per_sample`, `eval/unigram_nll` (the mu-law unigram baseline of the
    same samples), `eval/perplexity` and `eval/codebook_usage` of the codes, over every batch of `loader`."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    config = model.config
    nll_sum = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    classes = torch.zeros(config.mu_law_channels, dtype=torch.float64, device=device)
    codes = torch.zeros(config.num_embeddings, dtype=torch.float64, device=device)
    for batch in loader:
        if len(batch["input_values"]) == 0:
            continue
        values, mask = batch["input_values"].to(device), batch["attention_mask"].to(device)
        speakers = batch["speaker_ids"].to(device) if batch["speaker_ids"] is not None else None
        out = model(input_values=values, speaker_ids=speakers, attention_mask=mask)
        valid = mask.sum().double()
        nll_sum += out.nll.double() * valid
        count += valid
        classes += mu_law_histogram(values, mask, config.mu_law_channels).to(device)
        codes += torch.bincount(out.codes.flatten(), minlength=config.num_embeddings).double()
    stats = torch.cat([nll_sum[None], count[None], classes, codes])
    if accelerator is not None:
        stats = accelerator.reduce(stats, "sum")
    nll_sum, count, classes, codes = stats[0], stats[1], stats[2 : 2 + len(classes)], stats[2 + len(classes) :]
    if was_training:
        model.train()
    if count == 0:
        return {}
    nll = float(nll_sum / count)
    probabilities = codes / codes.sum()
    nonzero = probabilities[probabilities > 0]
    return {
        "eval/nll": nll,
        "eval/bits_per_sample": nll / math.log(2),
        "eval/unigram_nll": unigram_nll(classes),
        "eval/perplexity": float(torch.exp(-(nonzero * nonzero.log()).sum())),
        "eval/codebook_usage": float((codes > 0).double().mean()),
        "eval/samples": float(count),
    }


__all__ = ["AudioTask", "evaluate_audio_model"]
