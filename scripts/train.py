"""Trains a VQ-VAE, a VQ-VAE-2 or a PixelSNAIL prior with Accelerate on a streamed `datasets` dataset.

One CPU, several GPUs or several machines, the same script:

    accelerate launch scripts/train.py --model vqvae --dataset outputs/data/fashion-mnist \\
        --output_dir outputs/vqvae --model_config '{"in_channels": 1, "image_size": 28}'
    accelerate launch scripts/train.py configs/demo_vqvae.yaml                        # arguments from a file
    accelerate launch scripts/train.py configs/demo_vqvae.yaml --max_train_steps 100  # file, then overrides
    accelerate launch scripts/train.py ... --resume_from_checkpoint latest             # continue a stopped run

`--dataset` is a Hub dataset id or a local folder (parquet shards, imagefolder). Priors train on the code datasets
that `scripts/extract_codes.py` writes.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, set_seed
from tqdm.auto import tqdm
from transformers import HfArgumentParser, get_cosine_schedule_with_warmup

from hf_vqvae.data import SkipLog, TooManyBadExamplesError, endless_batches
from hf_vqvae.training import TASKS, load_checkpoint, resolve_checkpoint, save_checkpoint

logger = get_logger(__name__)


@dataclass
class TrainArguments:
    model: str = field(default="vqvae", metadata={"help": "what to train", "choices": sorted(TASKS)})
    dataset: str | None = field(default=None, metadata={"help": "Hub dataset id or local folder"})
    output_dir: str = field(default="outputs/run", metadata={"help": "checkpoints, logs, pictures, final model"})
    model_config: str = field(default="{}", metadata={"help": "JSON of config fields, e.g. '{\"image_size\": 64}'"})
    model_name_or_path: str | None = field(default=None, metadata={"help": "start from a pretrained model"})
    train_split: str = "train"
    eval_split: str = "test"
    image_column: str = "image"
    label_column: str | None = field(default="label", metadata={"help": "image datasets: labels carried along"})
    code_column: str = field(default="codes", metadata={"help": "priors: the code level to model"})
    condition_column: str | None = field(default=None, metadata={"help": "priors: the level above, to condition on"})
    class_conditional: bool = field(default=False, metadata={"help": "priors: condition on the dataset's labels"})
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 64
    learning_rate: float = 3e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 0.0
    lr_warmup_steps: int = 100
    max_train_steps: int = 1000
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping; 0 disables"})
    mixed_precision: str = field(default="no", metadata={"choices": ["no", "fp16", "bf16"]})
    seed: int = 0
    shuffle_buffer: int = field(default=1000, metadata={"help": "examples in the shuffle buffer; 0 keeps order"})
    num_workers: int = field(default=2, metadata={"help": "DataLoader workers decoding and transforming"})
    eval_steps: int = 500
    eval_samples: int | None = field(default=1024, metadata={"help": "held-out examples per evaluation"})
    logging_steps: int = 50
    checkpointing_steps: int = 500
    checkpoints_total_limit: int = 2
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "a checkpoint folder or 'latest'"})
    report_to: str | None = field(default="tensorboard", metadata={"help": "an Accelerate tracker, or 'none'"})
    max_skipped_fraction: float = field(default=0.01, metadata={"help": "abort if more input examples are bad"})
    max_nonfinite_steps: int = field(default=10, metadata={"help": "abort after this many non-finite losses in a row"})
    record_batches: bool = field(
        default=False, metadata={"help": "write each rank's per-step example ids and losses (data audits, tests)"}
    )
    push_to_hub: bool = field(
        default=False, metadata={"help": "after training, push model, code, processor, card and pictures to the Hub"}
    )
    hub_model_id: str | None = field(
        default=None, metadata={"help": "Hub repo to push to (org/name); default: your namespace/<output_dir name>"}
    )
    hub_private: bool | None = field(default=None, metadata={"help": "create the Hub repo private"})

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ValueError("--dataset is required (a Hub dataset id or a local folder)")
        try:
            self.model_config = (
                json.loads(self.model_config) if isinstance(self.model_config, str) else self.model_config
            )
        except json.JSONDecodeError as error:
            raise ValueError(f"--model_config must be JSON: {error}") from error
        if self.report_to in ("none", ""):
            self.report_to = None


def parse_args(argv: list[str] | None = None) -> TrainArguments:
    """Command-line arguments, optionally preceded by a YAML/JSON file of defaults that the flags override."""
    argv = sys.argv[1:] if argv is None else argv
    parser = HfArgumentParser(TrainArguments)
    if argv and argv[0].endswith((".yaml", ".yml", ".json")):
        defaults = yaml.safe_load(Path(argv[0]).read_text()) or {}
        unknown = set(defaults) - {f.name for f in fields(TrainArguments)}
        if unknown:
            raise ValueError(f"{argv[0]}: unknown arguments {sorted(unknown)}")
        if isinstance(defaults.get("model_config"), dict):
            defaults["model_config"] = json.dumps(defaults["model_config"])
        parser.set_defaults(**defaults)
        argv = argv[1:]
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def main(args: TrainArguments):
    """Trains as `args` say; returns the trained (unwrapped) model, on every process."""
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        # Codebooks and EMA statistics are kept identical by the quantizer's own all-reduce; DDP need not
        # broadcast buffers at every forward.
        kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    set_seed(args.seed)  # the same initial weights on every rank

    task = TASKS[args.model](args)
    train_loader, eval_loader = task.loaders(accelerator.process_index, accelerator.num_processes)
    trainable = [p for p in task.model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(
        trainable, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), weight_decay=args.weight_decay
    )
    # Accelerate steps a prepared scheduler once per process per update, hence the factor.
    scheduler = get_cosine_schedule_with_warmup(
        optimizer,
        num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )
    # The loaders stay unprepared: each rank already reads its own shards (split_dataset_by_node).
    model, optimizer, scheduler = accelerator.prepare(task.model, optimizer, scheduler)

    global_step, epoch, batches_in_epoch, nonfinite_in_a_row = 0, 0, 0, 0
    skips = SkipLog()
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(output_dir, args.resume_from_checkpoint)
        restored = load_checkpoint(accelerator, checkpoint)
        global_step = restored["step"]
        epoch, batches_in_epoch = restored["rank"]["epoch"], restored["rank"]["batches_in_epoch"]
        skips.load_state_dict(restored["rank"]["skips"])
        logger.info(f"resumed from {checkpoint} at step {global_step} (epoch {epoch}, batch {batches_in_epoch})")

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "train_args.json").write_text(json.dumps(vars(args), indent=2, default=str) + "\n")
    if args.report_to:
        accelerator.init_trackers("hf_vqvae", config={k: str(v) for k, v in vars(args).items()})
    recorded: list[dict] = []  # with --record_batches

    batches = endless_batches(train_loader, start_epoch=epoch, skip_batches=batches_in_epoch)
    progress = tqdm(total=args.max_train_steps, initial=global_step, disable=not accelerator.is_local_main_process)
    progress.set_description(f"train {args.model}")
    running_loss, running_count, metrics = 0.0, 0, {}
    while global_step < args.max_train_steps:
        for _ in range(args.gradient_accumulation_steps):
            batch_epoch, batch = next(batches)
            batches_in_epoch = batches_in_epoch + 1 if batch_epoch == epoch else 1
            epoch = batch_epoch
            skips.update(batch)
            skips.check(args.max_skipped_fraction)
            # Every rank must run the same forwards (the quantizer all-reduces inside): if any rank's batch held
            # only unusable images, all skip it.
            if _any_rank(accelerator, task.batch_size(batch) == 0):
                continue
            with accelerator.accumulate(model):
                output = task.forward(model, batch, accelerator.device)
                if _any_rank(accelerator, not torch.isfinite(output.loss).item()):
                    nonfinite_in_a_row += 1
                    logger.warning(
                        f"step {global_step}: non-finite loss, update skipped ({nonfinite_in_a_row} in a row)"
                    )
                    optimizer.zero_grad()
                    if nonfinite_in_a_row >= args.max_nonfinite_steps:
                        raise NonFiniteLossError(
                            f"{nonfinite_in_a_row} non-finite losses in a row (--max_nonfinite_steps): stopping. "
                            f"The last good checkpoint in {output_dir} is intact; resume from it with a lower "
                            "--learning_rate or after checking the data."
                        )
                    continue
                nonfinite_in_a_row = 0
                accelerator.backward(output.loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable, args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            running_loss += output.loss.item()
            running_count += 1
            if args.record_batches:
                ids = batch["ids"].tolist() if batch.get("ids") is not None else None
                recorded.append({"step": global_step + 1, "ids": ids, "loss": output.loss.item()})

        global_step += 1
        progress.update(1)
        if global_step % args.logging_steps == 0 and running_count:
            logs = {"train/loss": running_loss / running_count, "train/lr": scheduler.get_last_lr()[0]}
            logs.update(task.train_logs(output))
            logs["train/skipped_examples"] = skips.skipped
            progress.set_postfix(loss=f"{logs['train/loss']:.4f}")
            accelerator.log(logs, step=global_step)
            running_loss, running_count = 0.0, 0
        if global_step % args.eval_steps == 0 or global_step == args.max_train_steps:
            pictures = output_dir / "images" / f"{args.model}-step{global_step:06d}.png"
            metrics = task.evaluate(accelerator.unwrap_model(model), eval_loader, accelerator, pictures)
            accelerator.log(metrics, step=global_step)
            logger.info(f"step {global_step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        checkpoint_due = global_step % args.checkpointing_steps == 0 or global_step == args.max_train_steps
        if checkpoint_due and nonfinite_in_a_row:
            # Keep the last good checkpoint rather than rotate it out for the state of a diverging run.
            logger.warning(f"step {global_step}: checkpoint postponed until a finite step")
        elif checkpoint_due:
            rank_state = {"epoch": epoch, "batches_in_epoch": batches_in_epoch, "skips": skips.state_dict()}
            save_checkpoint(accelerator, output_dir, global_step, rank_state, keep=args.checkpoints_total_limit)
    progress.close()
    if args.record_batches:
        (output_dir / f"batches_rank{accelerator.process_index}.json").write_text(json.dumps(recorded))

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        task.save(accelerator.unwrap_model(model), output_dir)
        summary = {**metrics, "train/steps": global_step, "train/skipped_examples": skips.skipped}
        summary["train/skipped_by_cause"] = dict(skips.counts)
        (output_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        logger.info(f"saved the final {args.model} model and metrics.json to {output_dir}")
        if args.push_to_hub:
            # The card is filled from metrics.json and train_args.json, so this comes after both are written.
            from hf_vqvae.hub import push_training_run

            commit = push_training_run(output_dir, args.hub_model_id or output_dir.name, private=args.hub_private)
            logger.info(f"pushed {output_dir / 'hub'} to the Hub: {getattr(commit, 'commit_url', commit)}")
    accelerator.end_training()
    return accelerator.unwrap_model(model)


class NonFiniteLossError(RuntimeError):
    """Too many non-finite losses in a row: the run is diverging."""


def _any_rank(accelerator: Accelerator, flag: bool) -> bool:
    """True if `flag` holds on any process (one tiny all-reduce when distributed)."""
    if accelerator.num_processes == 1:
        return flag
    return bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), "sum").item() > 0)


if __name__ == "__main__":
    try:
        main(parse_args())
    except (TooManyBadExamplesError, NonFiniteLossError) as error:
        # Expected ways for a run to stop: one clear message, no traceback.
        logger.error(f"training stopped: {error}", main_process_only=False)
        sys.exit(1)
