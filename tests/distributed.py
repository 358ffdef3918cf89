"""Two CPU ranks through `accelerate launch`, as a user runs them, made diagnosable.

Once in many runs (seen in CI, never reproduced by hand in dozens of tries), a two-rank gloo run hung in its first
step until the test's timeout, with nothing to show where. So each launch here runs with Python's faulthandler on:
when an attempt outlives `timeout`, every process under the launcher gets SIGABRT, which makes
each rank print the traceback of every thread before it dies. That hang is then retried once, with those tracebacks
kept as a warning; a second hang fails the test with them. A run that ends, with any result, is never retried.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

from conftest import free_port


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`: torch's launcher starts the ranks in sessions of their own, out of reach of a
    signal to the launcher's process group."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while being read
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _launch_once(script: Path, arguments: list[str], env: dict[str, str], timeout: float):
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command += ["--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port())]
    command += [str(script), *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), False
    except subprocess.TimeoutExpired:
        ranks = _descendants(process.pid)
        _signal(ranks, signal.SIGABRT)  # faulthandler: each rank prints every thread's traceback, then dies
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            _signal([*_descendants(process.pid), *ranks, process.pid], signal.SIGKILL)
            stdout, stderr = process.communicate()
        return subprocess.CompletedProcess(command, -1, stdout, stderr), True


def launch_two_ranks(
    script: Path, arguments: list[str], output_dir: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Runs `script arguments` on two CPU ranks (gloo over loopback, one thread each). Returns the finished run;
    a run that hung twice is returned with returncode -1 and the ranks' tracebacks in its stderr. A retry starts
    from an empty `output_dir`, so that nothing the hung attempt wrote is read as the retry's."""
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "true",
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",
        "PYTHONFAULTHANDLER": "1",
    }
    result, hung = _launch_once(script, arguments, env, timeout)
    if hung:
        tracebacks = result.stderr[-6000:]
        warnings.warn(f"two-rank run hung for {timeout} s; retrying once. Its tracebacks:\n{tracebacks}", stacklevel=2)
        shutil.rmtree(output_dir, ignore_errors=True)
        result, hung = _launch_once(script, arguments, env, timeout)
        if hung:
            result.stderr = f"the two-rank run hung twice ({timeout} s each); tracebacks:\n{result.stderr}"
    return result
