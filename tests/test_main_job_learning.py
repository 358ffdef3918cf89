"""The main jobs learn what their issues ask, measured on held-out real data. Marked `long`: `make test` leaves
them out, `make test-long` runs them (about 35 minutes on 2 cores).

* Environments (issue 15): `scripts/run_demo_env.py` at its full size (about 18 minutes) in a temporary folder, then
  its `metrics.json`: the video model's rollouts beat copying the last frame over a short horizon, and an
  inverse-dynamics classifier trained on real pairs recovers the commanded action from the first generated steps'
  pairs more often than always guessing the commonest action, and with guidance on the action over all 16 steps,
  more than without it.
* Speech (issue 14): `scripts/run_demo_audio.py` (about 20 minutes), then its `demo_summary.json`: held-out NLL below
  the mu-law unigram baseline, STOI of reconstructions above a noise baseline, and voice conversion moving a speaker
  classifier trained on real speech toward the target, and (with the decoder's channel standardised away) naming
  the target at more than twice chance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.long

REPO = Path(__file__).resolve().parents[1]
SHORT_HORIZON = 4


def run_job(script: str, out: Path) -> None:
    command = [sys.executable, str(REPO / "scripts" / script), "--output_dir", str(out)]
    subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.fixture(scope="module")
def env_metrics(tmp_path_factory) -> dict:
    pytest.importorskip("vizdoom")
    out = tmp_path_factory.mktemp("demo-env")
    run_job("run_demo_env.py", out)
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def speech_results(tmp_path_factory) -> dict:
    from hf_vqvae.data.speech import FILLETS_SOUND_ROOT

    if not FILLETS_SOUND_ROOT.is_dir():
        pytest.skip("the speech data is not installed (make speech-deps)")
    out = tmp_path_factory.mktemp("demo-audio")
    run_job("run_demo_audio.py", out)
    return json.loads((out / "demo_summary.json").read_text())["results"]


def test_rollouts_beat_copying_the_last_frame_at_a_short_horizon(env_metrics):
    prediction = env_metrics["prediction"]
    generated = prediction["psnr_per_step"][:SHORT_HORIZON]
    copied = prediction["copy_last_psnr_per_step"][:SHORT_HORIZON]
    shares = prediction["beats_copy_share_per_step"][:SHORT_HORIZON]
    assert prediction["num_rollouts"] >= 48
    # In most windows the predicted next frame is closer to the real one than the copied last frame is, and over
    # the first steps the mean PSNR is above copying's. Step 1's mean PSNR alone is not asserted: in nearly still
    # windows copying the real pixels scores above 30 dB, beyond any decoded frame (stage 1 reconstructs at ~28).
    assert shares[0] > 0.5 and sum(shares) / SHORT_HORIZON > 0.5, shares
    assert sum(generated) / SHORT_HORIZON > sum(copied) / SHORT_HORIZON, (generated, copied)


def test_the_first_generated_steps_follow_the_commanded_action(env_metrics):
    consistency = env_metrics["prediction"]["action_consistency"]
    # The classifier itself must read real pairs well above chance, or the comparison means nothing.
    assert consistency["real_step1_accuracy"] > consistency["chance"] + 0.1, consistency
    generated = consistency["generated_accuracy_per_step"][:SHORT_HORIZON]
    assert sum(generated) / SHORT_HORIZON > consistency["chance"] + 0.05, consistency


def test_guided_rollouts_keep_moving_and_following_the_action_over_the_whole_horizon(env_metrics):
    consistency = env_metrics["prediction"]["action_consistency"]
    assert env_metrics["prediction"]["sampling"]["guidance_scale"] > 1
    # Over every generated pair of the 16 steps, not only the first ones.
    assert consistency["generated_pairs_accuracy"] > consistency["chance"] + 0.07, consistency
    # Against the same model and windows without guidance: the view moves more and the action is read more often.
    rows = {row["guidance_scale"]: row for row in env_metrics["guidance_sweep"]}
    guided, plain = rows[env_metrics["prediction"]["sampling"]["guidance_scale"]], rows[1.0]
    assert guided["change_mean"] > plain["change_mean"] and guided["action_all"] > plain["action_all"], rows


def test_speech_learns_below_the_unigram_baseline_and_above_noise(speech_results):
    results = speech_results
    assert results["heldout_nll_nats"] < results["unigram_nll_nats"] - 1.0, results
    assert results["stoi_reconstruction"] > results["stoi_noise"] + 0.1, results
    assert results["mrstft_reconstruction"] < results["mrstft_noise"], results


def test_voice_conversion_moves_the_speaker_classifier_toward_the_target(speech_results):
    results = speech_results
    assert results["speaker_accuracy_real"] > 0.9, results  # the classifier itself knows the real voices
    assert results["num_conversions"] >= 60
    shift, error = results["conversion_target_shift"], results["conversion_target_shift_se"]
    assert shift > 2 * error and shift > 0, results


def test_voice_conversion_names_the_target_far_above_chance(speech_results):
    # With the decoder's channel removed (features standardised on the decoded clips, no labels used), the
    # classifier names the target of a conversion at more than twice the chance rate.
    results = speech_results
    assert results["standardized_conversion_target_accuracy"] > 2 * results["chance"], results
    assert results["standardized_conversion_target_shift"] > 2 * results["standardized_conversion_target_shift_se"]
