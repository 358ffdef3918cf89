"""Runs the command line of scripts/train.py (its `run()`, what `python scripts/train.py ...` runs) once per case, in
one process, so that many short cases pay for importing torch, transformers and datasets once.

    python tests/train_cases.py cases.json results.json

`cases.json` maps a case name to its argument list; `results.json` gets, per case, the exit status `rc` and
everything the case wrote to stderr (its log lines and its error line), or `rc: "exception"` with the traceback of
anything that escaped `run()`.
"""

import contextlib
import importlib.util
import io
import json
import logging
import sys
import traceback
from pathlib import Path

spec = importlib.util.spec_from_file_location("train", Path(__file__).resolve().parents[1] / "scripts" / "train.py")
train = importlib.util.module_from_spec(spec)
sys.modules["train"] = train  # dataclasses resolve the script's annotations through sys.modules
spec.loader.exec_module(train)


class CurrentStderr(logging.Handler):
    """Log records go to whatever `sys.stderr` is when they are emitted: each case's own capture."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")


# Configured before train.main's own basicConfig, which then leaves it alone.
logging.basicConfig(level=logging.INFO, handlers=[CurrentStderr()], format="%(levelname)s %(message)s")

cases_file, results_file = Path(sys.argv[1]), Path(sys.argv[2])
cases = json.loads(cases_file.read_text())
results = {}
for name, argv in cases.items():
    captured = io.StringIO()
    sys.argv = ["train.py", *argv]
    with contextlib.redirect_stderr(captured):
        try:
            rc = train.run()
        except BaseException:  # noqa: BLE001 - a traceback is exactly what the tests look for
            rc = "exception"
            traceback.print_exc()
    results[name] = {"rc": rc, "stderr": captured.getvalue()}
    print(f"{name}: rc={rc}", file=sys.__stderr__, flush=True)
results_file.write_text(json.dumps(results, indent=2))
