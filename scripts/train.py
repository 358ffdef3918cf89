"""Trains a VQ-VAE, a VQ-VAE-2 or a PixelSNAIL prior with Accelerate on a streamed `datasets` dataset.

One CPU, several GPUs or several machines, the same script:

    accelerate launch scripts/train.py --model vqvae --dataset outputs/data/fashion-mnist \\
        --output_dir outputs/vqvae --model_config '{"in_channels": 1, "image_size": 28}'
    accelerate launch scripts/train.py configs/demo_vqvae.yaml                        # arguments from a file
    accelerate launch scripts/train.py configs/demo_vqvae.yaml --max_train_steps 100  # file, then overrides
    accelerate launch scripts/train.py ... --resume_from_checkpoint latest             # continue a stopped run

`--dataset` is a Hub dataset id or a local folder: images (flat, in train/ and validation/ or test/ subfolders, or one
subfolder per class), parquet or arrow shards, or a `save_to_disk` folder. Evaluation uses the dataset's validation
(or test) split, else `--validation_split_percentage` of the train split, held out by a hash of each example. Priors
train on the code datasets that `scripts/extract_codes.py` writes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, gather_object, set_seed
from tqdm.auto import tqdm
from transformers import HfArgumentParser, get_cosine_schedule_with_warmup

from hf_vqvae.data import DatasetError, SkipLog, TooManyBadExamplesError, TrainingFeed
from hf_vqvae.training import TASKS, list_checkpoints, load_checkpoint, resolve_checkpoint, save_checkpoint

logger = get_logger(__name__)


@dataclass
class TrainArguments:
    model: str = field(default="vqvae", metadata={"help": "what to train", "choices": sorted(TASKS)})
    dataset: str | None = field(
        default=None, metadata={"help": "Hub dataset id, or a local folder of images or parquet/arrow shards"}
    )
    output_dir: str = field(default="outputs/run", metadata={"help": "checkpoints, logs, pictures, final model"})
    model_config: str = field(default="{}", metadata={"help": "JSON of config fields, e.g. '{\"image_size\": 64}'"})
    model_name_or_path: str | None = field(default=None, metadata={"help": "start from a pretrained model"})
    train_split: str = field(default="train", metadata={"help": "a dataset with one split trains on it, any name"})
    eval_split: str | None = field(
        default=None,
        metadata={
            "help": "default: the dataset's validation or test split, else --validation_split_percentage of the "
            "train split (naming the train split evaluates on that held-out part)"
        },
    )
    validation_split_percentage: float = field(
        default=5.0,
        metadata={
            "help": "percent of the train split held out for evaluation when the dataset has no validation or test "
            "split, chosen by a hash of each example (the same on every rank and after a resume)"
        },
    )
    image_column: str | None = field(default=None, metadata={"help": "default: the dataset's Image column"})
    label_column: str | None = field(
        default=None, metadata={"help": "image datasets: default its ClassLabel (or integer `label`) column; 'none'"}
    )
    code_column: str = field(default="codes", metadata={"help": "priors: the code level to model"})
    condition_column: str | None = field(default=None, metadata={"help": "priors: the level above, to condition on"})
    class_conditional: bool = field(default=False, metadata={"help": "priors: condition on the dataset's labels"})
    class_dropout: float | None = field(
        default=None,
        metadata={
            "help": "class-conditional priors: the share of training labels replaced by a null class, so that the "
            "prior can sample with classifier-free guidance (e.g. 0.1; default: the config's, 0 for a new prior)"
        },
    )
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
    max_skipped_fraction: float = field(
        default=0.01,
        metadata={
            "help": "stop if more of the examples read are unusable (checked from 100 examples on, and always at "
            "the end of the data and of the run); a run with no usable example always stops"
        },
    )
    max_nonfinite_steps: int = field(default=10, metadata={"help": "abort after this many non-finite losses in a row"})
    record_batches: bool = field(
        default=False,
        metadata={
            "help": "write each rank's per-step example ids and losses (batches_rank{r}.jsonl) and its evaluation "
            "example ids (eval_examples_rank{r}.json): data audits, tests"
        },
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
            raise ArgumentError("--dataset is required (a Hub dataset id or a local folder)")
        try:
            self.model_config = (
                json.loads(self.model_config) if isinstance(self.model_config, str) else self.model_config
            )
        except json.JSONDecodeError as error:
            raise ArgumentError(f"--model_config must be JSON: {error}") from error
        if self.class_conditional and self.model != "pixelsnail":
            raise ArgumentError(
                "--class_conditional is for priors (--model pixelsnail): a VQ model is trained without labels"
            )
        if self.class_dropout is not None:
            if not self.class_conditional:
                raise ArgumentError("--class_dropout drops class labels: it needs --class_conditional")
            if not 0 <= self.class_dropout < 1:
                raise ArgumentError(f"--class_dropout must be in [0, 1), not {self.class_dropout}")
        if not 0 <= self.max_skipped_fraction < 1:
            raise ArgumentError(f"--max_skipped_fraction must be in [0, 1), not {self.max_skipped_fraction}")
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
            raise ArgumentError(f"{argv[0]}: unknown arguments {sorted(unknown)}")
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

    task = TASKS[args.model](args)  # resolves --dataset first: unusable data fails before anything is written
    logger.info(task.data.describe())
    train_loader, eval_loader, eval_skips = task.loaders(accelerator.process_index, accelerator.num_processes)
    can_evaluate = _check_evaluation_data(accelerator, task, eval_skips, args.max_skipped_fraction)
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

    feed = TrainingFeed(
        train_loader,
        size=task.batch_size,
        max_skipped_fraction=args.max_skipped_fraction,
        world_size=accelerator.num_processes,
        reduce=lambda counts: accelerator.reduce(counts.to(accelerator.device), "sum").cpu(),
        gather=lambda log: gather_object([log]),
        log=logger.info,
    )
    global_step = 0
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(output_dir, args.resume_from_checkpoint)
        restored = load_checkpoint(accelerator, checkpoint)
        global_step = restored["step"]
        feed.load_state_dict(restored["rank"])
        _use_learning_rate(scheduler, args.learning_rate)
        logger.info(
            f"resumed from {checkpoint} at step {global_step} (epoch {feed.epoch}, batch {feed.batches_in_epoch})"
        )

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        # The resolved data choices (splits, columns, class names) replace the defaults they came from.
        record = {**vars(args), **task.data.record()}
        (output_dir / "train_args.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    if args.report_to:
        accelerator.init_trackers("hf_vqvae", config={k: str(v) for k, v in vars(args).items()})

    try:
        metrics = _train(args, accelerator, task, model, optimizer, scheduler, trainable, feed, eval_loader,
                         can_evaluate, global_step)  # fmt: skip
    except TooManyBadExamplesError as error:
        checkpoints = list_checkpoints(output_dir)
        if checkpoints:
            advice = (
                f"No final model was saved. The last good checkpoint, {checkpoints[-1]}, is intact: remove or fix the "
                "bad examples (or raise --max_skipped_fraction) and continue with --resume_from_checkpoint latest"
            )
        else:
            advice = "No model was saved"
        raise TooManyBadExamplesError(f"{error}. {advice}") from None
    except NonFiniteLossError:
        logger.info(f"data: {feed.summary()}")
        raise

    everyone = SkipLog.merged(gather_object([feed.skips]))
    logger.info(f"data: {everyone.summary()}")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        task.save(accelerator.unwrap_model(model), output_dir)
        summary = {
            **metrics,
            "train/examples_read": everyone.seen + everyone.held_out,
            "train/skipped_examples": everyone.skipped,
            "train/skipped_by_cause": dict(everyone.counts),
            "train/held_out_examples": everyone.held_out,
        }
        (output_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        logger.info(f"saved the final {args.model} model and metrics.json to {output_dir}")
        if args.push_to_hub:
            # The card is filled from metrics.json and train_args.json, so this comes after both are written.
            from hf_vqvae.hub import push_training_run

            commit = push_training_run(output_dir, args.hub_model_id or output_dir.name, private=args.hub_private)
            logger.info(f"pushed {output_dir / 'hub'} to the Hub: {getattr(commit, 'commit_url', commit)}")
    accelerator.end_training()
    return accelerator.unwrap_model(model)


def _train(
    args, accelerator, task, model, optimizer, scheduler, trainable, feed, eval_loader, can_evaluate, global_step
) -> dict:
    """The loop: one real update per step (the feed gives only batches with usable examples; a non-finite loss
    abandons the update), evaluations, checkpoints. Returns the last evaluation's metrics and `train/steps`."""
    output_dir = Path(args.output_dir)
    records = None
    if args.record_batches:  # appended update by update, so that a killed run leaves its record too
        output_dir.mkdir(parents=True, exist_ok=True)
        records = open(output_dir / f"batches_rank{accelerator.process_index}.jsonl", "a")  # noqa: SIM115
        evaluated = [example.get("id") for example in eval_loader.dataset]
        (output_dir / f"eval_examples_rank{accelerator.process_index}.json").write_text(json.dumps(evaluated))
    progress = tqdm(total=args.max_train_steps, initial=global_step, disable=not accelerator.is_local_main_process)
    progress.set_description(f"train {args.model}")
    running_loss, running_count, metrics, nonfinite_in_a_row = 0.0, 0, {}, 0
    while global_step < args.max_train_steps:
        # Accelerate syncs gradients every `gradient_accumulation_steps` calls of `accumulate`: an update abandoned
        # half-way must not shift that count for the next one.
        accelerator.step = 0
        update: list[dict] = []
        for _ in range(args.gradient_accumulation_steps):
            batch = feed.next()
            with accelerator.accumulate(model):
                output = task.forward(model, batch, accelerator.device)
                if _any_rank(accelerator, not torch.isfinite(output.loss).item()):
                    optimizer.zero_grad()
                    break
                accelerator.backward(output.loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable, args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            ids = batch["ids"].tolist() if batch.get("ids") is not None else None
            update.append({"step": global_step + 1, "ids": ids, "loss": output.loss.item()})
        if len(update) < args.gradient_accumulation_steps:  # a non-finite loss: no update, no step
            nonfinite_in_a_row += 1
            logger.warning(f"step {global_step}: non-finite loss, update skipped ({nonfinite_in_a_row} in a row)")
            if nonfinite_in_a_row >= args.max_nonfinite_steps:
                raise NonFiniteLossError(
                    f"{nonfinite_in_a_row} non-finite losses in a row (--max_nonfinite_steps): stopping. "
                    f"The last good checkpoint in {output_dir} is intact; resume from it with a lower "
                    "--learning_rate or after checking the data."
                )
            continue
        nonfinite_in_a_row = 0
        running_loss += sum(record["loss"] for record in update)
        running_count += len(update)
        if records is not None:
            records.writelines(json.dumps(record) + "\n" for record in update)
            records.flush()

        global_step += 1
        progress.update(1)
        if global_step == args.max_train_steps:
            feed.check_final()  # before the last evaluation and checkpoint: the rule without its 100-example floor
        if global_step % args.logging_steps == 0 and running_count:
            logs = {"train/loss": running_loss / running_count, "train/lr": scheduler.get_last_lr()[0]}
            logs.update(task.train_logs(output))
            logs["train/skipped_examples"] = feed.totals[1]
            progress.set_postfix(loss=f"{logs['train/loss']:.4f}")
            accelerator.log(logs, step=global_step)
            running_loss, running_count = 0.0, 0
        if can_evaluate and (global_step % args.eval_steps == 0 or global_step == args.max_train_steps):
            pictures = output_dir / "images" / f"{args.model}-step{global_step:06d}.png"
            metrics = task.evaluate(accelerator.unwrap_model(model), eval_loader, accelerator, pictures)
            accelerator.log(metrics, step=global_step)
            logger.info(f"step {global_step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        if global_step % args.checkpointing_steps == 0 or global_step == args.max_train_steps:
            save_checkpoint(accelerator, output_dir, global_step, feed.state_dict(), keep=args.checkpoints_total_limit)
    progress.close()
    if records is not None:
        records.close()
    return {**metrics, "train/steps": global_step}


def _check_evaluation_data(accelerator: Accelerator, task, eval_skips: SkipLog, max_fraction: float) -> bool:
    """The bad-data rule on the evaluation examples, all ranks together, before training starts. Returns whether
    there is anything to evaluate on (a small train-only dataset may hold none out)."""
    everyone = SkipLog.merged(gather_object([eval_skips]))
    source = task.data.eval_source()
    if everyone.seen == 0:
        logger.warning(f"no evaluation example ({source}): evaluation is skipped")
        return False
    message = everyone.verdict(max_fraction, min_seen=0, what="evaluation examples")
    if message:
        raise TooManyBadExamplesError(f"evaluation data ({source}): {message}")
    skipped = f" ({everyone.causes()}: {everyone.named()})" if everyone.skipped else ""
    logger.info(f"evaluation: {everyone.usable} examples, {source}; {everyone.skipped} skipped{skipped}")
    return True


def _use_learning_rate(scheduler, learning_rate: float) -> None:
    """A resumed run trains at its own --learning_rate, on the checkpoint's schedule position: the checkpoint's
    scheduler state would otherwise bring back the old rate (the advice after a divergence is to lower it)."""
    schedule = getattr(scheduler, "scheduler", scheduler)  # Accelerate's wrapper holds the LambdaLR
    if all(base == learning_rate for base in schedule.base_lrs):
        return
    logger.info(f"resuming at --learning_rate {learning_rate} (the checkpoint had {schedule.base_lrs[0]})")
    schedule.base_lrs = [learning_rate] * len(schedule.base_lrs)
    for group, factor in zip(schedule.optimizer.param_groups, schedule.lr_lambdas):
        group["initial_lr"] = learning_rate
        group["lr"] = learning_rate * factor(schedule.last_epoch)


class ArgumentError(ValueError):
    """A flag or argument file that cannot be used as given."""


class NonFiniteLossError(RuntimeError):
    """Too many non-finite losses in a row: the run is diverging."""


def _any_rank(accelerator: Accelerator, flag: bool) -> bool:
    """True if `flag` holds on any process (one tiny all-reduce when distributed)."""
    if accelerator.num_processes == 1:
        return flag
    return bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), "sum").item() > 0)


def run() -> int:
    """The command line: expected ways for a run to stop are one clear line on stderr (from the first process
    only) and a non-zero exit status, without a traceback."""
    try:
        main(parse_args())
    except (TooManyBadExamplesError, NonFiniteLossError) as error:
        _report(f"training stopped: {error}")
        return 1
    except (DatasetError, ArgumentError) as error:
        _report(f"train.py: error: {error}")
        return 2
    return 0


def _report(message: str) -> None:
    if os.environ.get("RANK", "0") == "0":
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(run())
