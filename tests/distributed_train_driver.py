"""Launched by tests/test_training.py through `accelerate launch`: runs the real training loop of
scripts/train.py, then each rank writes its own copy of the weights, so the test can compare ranks."""

import importlib.util
import sys
from pathlib import Path

from accelerate import PartialState
from safetensors.torch import save_file

spec = importlib.util.spec_from_file_location("train", Path(__file__).resolve().parents[1] / "scripts" / "train.py")
train = importlib.util.module_from_spec(spec)
sys.modules["train"] = train  # dataclasses resolve the script's annotations through sys.modules
spec.loader.exec_module(train)

args = train.parse_args(sys.argv[1:])
model = train.main(args)
rank = PartialState().process_index
state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
save_file(state, Path(args.output_dir) / f"rank{rank}.safetensors")
