"""Run by the tests (directly or through `accelerate launch`): the real training loop of scripts/train.py, then
each rank writes its own copy of the weights so that ranks can be compared.

HF_VQVAE_TEST_NAN_FORWARDS="3,4" makes those training forwards (counted from 1) non-finite through a real forward
hook on the VQ-VAE's encoder output, the way a diverging layer would.
"""

import importlib.util
import itertools
import os
import sys
from pathlib import Path

from accelerate import PartialState
from safetensors.torch import save_file

spec = importlib.util.spec_from_file_location("train", Path(__file__).resolve().parents[1] / "scripts" / "train.py")
train = importlib.util.module_from_spec(spec)
sys.modules["train"] = train  # dataclasses resolve the script's annotations through sys.modules
spec.loader.exec_module(train)

poisoned = {int(n) for n in os.environ.get("HF_VQVAE_TEST_NAN_FORWARDS", "").split(",") if n}
if poisoned:
    base_task = train.TASKS["vqvae"]

    class PoisonedTask(base_task):
        def __init__(self, args):
            super().__init__(args)
            calls = itertools.count(1)

            def poison(module, inputs, output):
                if module.training and next(calls) in poisoned:
                    return output * float("nan")
                return output

            self.model.pre_quantization.register_forward_hook(poison)

    train.TASKS["vqvae"] = PoisonedTask

args = train.parse_args(sys.argv[1:])
try:
    model = train.main(args)
except (train.TooManyBadExamplesError, train.NonFiniteLossError) as error:
    print(f"training stopped: {error}", file=sys.stderr)  # as scripts/train.py reports it
    sys.exit(1)
rank = PartialState().process_index
state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
save_file(state, Path(args.output_dir) / f"rank{rank}.safetensors")
