"""Offline evaluation of trained models over a whole dataset split, and the Hub model-index entries of the results.

`scripts/evaluate.py` is the command line; training's periodic evaluation runs the same loops, and the Hub cards
describe results with the same tables:

```python
from hf_vqvae.evaluation import evaluate_vq_model, image_loader, model_index_entries

loader = image_loader("outputs/data/fashion-mnist", "test", processor, batch_size=64)
metrics = evaluate_vq_model(model, loader)  # {"mse", "psnr", "ssim", "perplexity", "codebook_used", ...}
entries = model_index_entries(  # what goes under `model-index:` in a card's metadata
    "my-vqvae", metrics, task="reconstruction", dataset_type="zalando-datasets/fashion_mnist",
    dataset_name="Fashion-MNIST", dataset_split="test",
)
```

Modules, in the order data flows through them:

* `data`: batches of a streamed image or code split, cut to a number of examples.
* `stats`: running sums that distributed ranks add up (`ReconstructionStats`, `PriorNLLStats`).
* `loops`: the one evaluation loop of each kind (`evaluate_vq_model`, `evaluate_prior`), with an optional
  `Accelerator` doing the cross-rank reduction.
* `fid`: FID of a prior's samples (drawn by `hf_vqvae.sampling.generate_images`) against held-out images.
* `datasets`, `model_index`, `results`: how results are described and filed (dataset names, model-index entries,
  `eval_results.json`).

Every formula is the one in `hf_vqvae.metrics.functional`.
"""

from ..sampling import generate_images
from .data import code_loader, image_loader, limited_batches
from .datasets import KNOWN_SOURCES, DatasetInfo, describe_dataset
from .fid import prior_fid
from .loops import evaluate_prior, evaluate_vq_model, load_images
from .model_index import (
    METRIC_INFO,
    MODEL_INDEX_DIGITS,
    TASK_INFO,
    eval_results,
    eval_results_of_entries,
    level_metric_key,
    level_names,
    metric_entries,
    model_index_entries,
)
from .results import EVAL_RESULTS_FILE, weights_fingerprint
from .stats import MAX_PSNR, PriorNLLStats, ReconstructionStats

__all__ = [
    "EVAL_RESULTS_FILE",
    "KNOWN_SOURCES",
    "MAX_PSNR",
    "METRIC_INFO",
    "MODEL_INDEX_DIGITS",
    "TASK_INFO",
    "DatasetInfo",
    "PriorNLLStats",
    "ReconstructionStats",
    "code_loader",
    "describe_dataset",
    "eval_results",
    "eval_results_of_entries",
    "evaluate_prior",
    "evaluate_vq_model",
    "generate_images",
    "image_loader",
    "level_names",
    "level_metric_key",
    "limited_batches",
    "load_images",
    "metric_entries",
    "model_index_entries",
    "prior_fid",
    "weights_fingerprint",
]
