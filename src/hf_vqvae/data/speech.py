"""Real multi-speaker speech that works offline (SPEC section 3), as a `datasets` folder of parquet shards.

Sources, all installed from Debian (`make speech-deps`):

* the Asterisk core sound sets in G.722 (`asterisk-core-sounds-{en,es,fr,it,ru}-g722`): studio recordings of IVR
  prompts at 16 kHz, about 25 minutes per language, four voice artists (Allison Smith records both English and
  Spanish). Transcripts come from the small `asterisk-core-sounds-XX` packages, which are downloaded and unpacked
  into a temporary folder rather than installed (their postinst takes over `/usr/share/asterisk/sounds/fr`);
* the Czech dialogue of the game Fish Fillets (`fillets-ng-data-cs`, 22.05 kHz Ogg Vorbis): the two lead voice
  actors, the small fish (a woman) and the big fish (a man); who speaks a line and its text are in
  `fillets-ng-data`'s `script/*/dialogs_cs.lua` (`dialogId("id", "font_small" | "font_big", ...)`).

Every utterance is decoded once (G.722 with ffmpeg, many files per ffmpeg process because its start-up dominates;
Ogg with soundfile), mixed to mono, resampled to 16 kHz with soxr and cached as 16-bit FLAC under `cache_dir`.
Each split is written as `data/{split}-0000i-of-0000n.parquet` with the columns `id`, `audio` (the `datasets`
`Audio` feature holding the FLAC bytes), `speaker_id` (a `ClassLabel` over `SPEAKER_NAMES`), `speaker`,
`transcript`, `language`, `licence` and `duration` (seconds).

Held-out utterances: per speaker, utterances are ordered by a hash of their prompt id and the first `test_fraction`
go to `test`, and so does every utterance of a prompt held out for another voice (Asterisk prompt ids are shared
across languages): training never hears a held-out prompt's text from anyone.

Full run (all 6 speakers; 4,180 utterances, 3.42 hours; 383 files skipped: 361 lines of minor Fish Fillets
characters, 21 Asterisk tones, 1 empty file): 16,000 samples/s of audio, which the paper's 64x encoder turns into
250 latent frames/s. Measured first run (empty cache, `/usr/bin/time`): 49 s of CPU (ffmpeg included), 237 s wall
at load average 16 on 2 shared cores; the folder takes 247 MB (FLAC in parquet), the cache 244 MB. Later runs read
the cache.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import logging
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile
from datasets import Audio, ClassLabel, Features, Value
from tqdm.auto import tqdm

from ..feature_extraction_audio import resample_to_mono
from .audio import BadAudioError

logger = logging.getLogger(__name__)

SAMPLING_RATE = 16_000
ASTERISK_ROOT = Path("/usr/share/asterisk/sounds")
FILLETS_SOUND_ROOT = Path("/usr/share/games/fillets-ng/sound")
FILLETS_SCRIPT_ROOT = Path("/usr/share/games/fillets-ng/script")
APT_PACKAGES = (
    "ffmpeg asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-fr-g722 "
    "asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 fillets-ng-data fillets-ng-data-cs"
)


@dataclass(frozen=True)
class Speaker:
    name: str
    description: str
    licence: str


# The order is the `speaker_id` of the dataset and of the model's speaker embedding: append, never reorder.
SPEAKERS = (
    Speaker("Allison Smith", "female; US English and Mexican Spanish Asterisk prompts", "CC-BY-SA-3.0"),
    Speaker("June Wallack", "female; Canadian French Asterisk prompts", "CC-BY-SA-3.0"),
    Speaker("Carlo Flora", "male; Italian Asterisk prompts", "CC-BY-3.0"),
    Speaker(
        "IvrvoiceRU", "female; Russian Asterisk prompts (the set's voice, credited to 'Maxim', 2010)", "CC-BY-3.0"
    ),
    Speaker("Fish Fillets small fish", "female; Czech game dialogue (fillets-ng-data-cs)", "GPL-2.0-only"),
    Speaker("Fish Fillets big fish", "male; Czech game dialogue (fillets-ng-data-cs)", "GPL-2.0-only"),
)
SPEAKER_NAMES = tuple(speaker.name for speaker in SPEAKERS)

# language -> (folder under ASTERISK_ROOT, speaker id)
ASTERISK_SETS = {
    "en": ("en_US_f_Allison", 0),
    "es": ("es_MX_f_Allison", 0),
    "fr": ("fr_CA_f_June", 1),
    "it": ("it_IT_m_Carlo", 2),
    "ru": ("ru_RU_f_IvrvoiceRU", 3),
}
FILLETS_FONTS = {"font_small": 4, "font_big": 5}

SPEECH_FEATURES = Features(
    {
        "id": Value("string"),
        "audio": Audio(sampling_rate=SAMPLING_RATE),
        "speaker_id": ClassLabel(names=list(SPEAKER_NAMES)),
        "speaker": Value("string"),
        "transcript": Value("string"),
        "language": Value("string"),
        "licence": Value("string"),
        "duration": Value("float32"),
    }
)

# Shorter clips are clicks or single phones; they are skipped and counted.
MIN_DURATION_SECONDS = 0.2


@dataclass(frozen=True)
class Utterance:
    """One source recording: `key` is the prompt id shared across languages (the hold-out unit)."""

    path: Path
    key: str
    speaker_id: int
    language: str
    transcript: str
    codec: str  # "g722" (ffmpeg) or "soundfile"

    @property
    def id(self) -> str:
        return f"{self.language}/{self.key}"

    @property
    def cache_name(self) -> str:
        return f"{self.language}/{self.key}.flac"


# --- finding the recordings and their transcripts ---------------------------------------------------------------


def asterisk_transcripts(language: str, cache_dir: Path, fetch: bool = True) -> dict[str, str]:
    """`prompt id -> text` of an Asterisk language, from `core-sounds-XX.txt.gz` of the package
    `asterisk-core-sounds-XX`, fetched with `apt-get download` into a temporary folder (not installed) and cached as
    JSON (`make speech-deps` fills the cache, so later runs need no network). Returns `{}` with a warning when the
    cache is empty and `fetch` is off or apt cannot fetch it (the audio is still usable)."""
    cached = cache_dir / f"transcripts-{language}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    if not fetch:
        logger.warning("no cached transcripts for %s in %s (run `make speech-deps`)", language, cache_dir)
        return {}
    package = f"asterisk-core-sounds-{language}"
    with tempfile.TemporaryDirectory() as scratch:
        try:
            subprocess.run(["apt-get", "download", package], cwd=scratch, check=True, capture_output=True, text=True)
            deb = next(Path(scratch).glob(f"{package}_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), f"{scratch}/x"], check=True, capture_output=True)
            text = gzip.decompress(
                Path(f"{scratch}/x/usr/share/doc/{package}/core-sounds-{language}.txt.gz").read_bytes()
            ).decode("utf-8", errors="replace")
        except (OSError, subprocess.CalledProcessError, StopIteration) as error:
            detail = getattr(error, "stderr", "") or error
            logger.warning("no transcripts for %s (apt-get download %s failed: %s)", language, package, detail)
            return {}
    transcripts = parse_asterisk_transcripts(text)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(transcripts, ensure_ascii=False, indent=0))
    return transcripts


def parse_asterisk_transcripts(text: str) -> dict[str, str]:
    """`id: text` lines; `;` starts a comment."""
    transcripts = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(";") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        transcripts[key.strip()] = value.strip()
    return transcripts


def _is_tone(transcript: str) -> bool:
    # "[this is a simple beep tone]", "[ascending tones]": prompts that are not speech.
    return transcript.startswith("[") and transcript.endswith("]")


def fetch_transcripts(cache_dir: str | Path | None = None) -> None:
    """Caches every Asterisk language's transcripts (an install step: it uses apt's network access)."""
    for language in ASTERISK_SETS:
        asterisk_transcripts(language, Path(cache_dir or default_cache_dir()))


def asterisk_utterances(cache_dir: Path, skipped: Counter, fetch_transcripts: bool = True) -> list[Utterance]:
    utterances = []
    for language, (folder, speaker_id) in ASTERISK_SETS.items():
        root = ASTERISK_ROOT / folder
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is missing: apt-get install -y --no-install-recommends {APT_PACKAGES}")
        transcripts = asterisk_transcripts(language, cache_dir, fetch=fetch_transcripts)
        for path in sorted(root.rglob("*.g722")):
            key = path.relative_to(root).with_suffix("").as_posix()
            if key.startswith("silence/"):
                continue
            transcript = transcripts.get(key, "")
            if _is_tone(transcript):
                skipped["not_speech"] += 1
                continue
            utterances.append(Utterance(path, key, speaker_id, language, transcript, "g722"))
    return utterances


_DIALOG = re.compile(
    r'dialogId\(\s*"([^"]+)"\s*,\s*"(font_\w+)"\s*,\s*"(?:[^"\\]|\\.)*"\s*\)\s*dialogStr\(\s*"((?:[^"\\]|\\.)*)"\s*\)'
)


def fillets_dialogue() -> dict[str, tuple[str, str]]:
    """`dialog id -> (font, Czech text)` over every level's `dialogs_cs.lua`; the font names the character."""
    lines = {}
    for script in sorted(FILLETS_SCRIPT_ROOT.glob("*/dialogs_cs.lua")):
        for key, font, text in _DIALOG.findall(script.read_text(encoding="utf-8", errors="replace")):
            lines[key] = (font, text.replace('\\"', '"'))
    return lines


def fillets_utterances(skipped: Counter) -> list[Utterance]:
    if not FILLETS_SOUND_ROOT.is_dir() or not FILLETS_SCRIPT_ROOT.is_dir():
        raise FileNotFoundError(
            f"{FILLETS_SOUND_ROOT} or {FILLETS_SCRIPT_ROOT} is missing: apt-get install -y "
            f"--no-install-recommends {APT_PACKAGES}"
        )
    dialogue = fillets_dialogue()
    utterances = []
    for path in sorted(FILLETS_SOUND_ROOT.glob("*/cs/*.ogg")):
        font, text = dialogue.get(path.stem, (None, ""))
        if font not in FILLETS_FONTS:
            # Lines of the minor characters, or with no script entry: not one of the two lead voices.
            skipped["not_a_lead_voice"] += 1
            continue
        utterances.append(Utterance(path, path.stem, FILLETS_FONTS[font], "cs", text, "soundfile"))
    return utterances


# --- hold-out and subsetting --------------------------------------------------------------------------------------


def _hash(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def split_per_speaker(
    utterances: Iterable[Utterance], test_fraction: float, max_per_speaker: int | None
) -> dict[str, list[Utterance]]:
    """Per speaker: order by a hash of the prompt id, keep `max_per_speaker`, and send the first
    `max(1, round(test_fraction * n))` to `test` (none when a speaker has a single utterance); then any other
    utterance of a prompt held out for some voice is held out too, so no prompt's text is both trained on and
    tested on. Deterministic."""
    by_speaker: dict[int, list[Utterance]] = {}
    for utterance in utterances:
        by_speaker.setdefault(utterance.speaker_id, []).append(utterance)
    kept, held_keys = [], set()
    for speaker_id in sorted(by_speaker):
        ordered = sorted(by_speaker[speaker_id], key=lambda u: (_hash(u.key), u.language))
        if max_per_speaker is not None:
            ordered = ordered[:max_per_speaker]
        num_test = max(1, round(test_fraction * len(ordered))) if len(ordered) > 1 and test_fraction > 0 else 0
        held_keys.update(u.key for u in ordered[:num_test])
        kept += ordered
    splits = {
        "train": [u for u in kept if u.key not in held_keys],
        "test": [u for u in kept if u.key in held_keys],
    }
    # Speakers interleaved in a fixed pseudo-random order, so every contiguous shard holds every speaker.
    return {name: sorted(rows, key=lambda u: _hash(u.id)) for name, rows in splits.items()}


# --- decoding and caching -----------------------------------------------------------------------------------------


def _ffmpeg_decode_g722(paths: list[Path], out_dir: Path) -> list[Path | None]:
    """Decodes G.722 files to 16 kHz 16-bit WAV in one ffmpeg process (one input and one output per file). If the
    batch fails, each file is retried alone so that one broken file costs only itself (returned as `None`)."""
    outputs = [out_dir / f"{_hash(str(path))}.wav" for path in paths]
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    for path in paths:
        command += ["-f", "g722", "-i", str(path)]
    for index, output in enumerate(outputs):
        command += ["-map", f"{index}:a", "-ac", "1", "-c:a", "pcm_s16le", str(output)]
    if subprocess.run(command, capture_output=True).returncode == 0:
        return outputs
    if len(paths) == 1:
        return [None]
    return [result for path in paths for result in _ffmpeg_decode_g722([path], out_dir)]


def _encode_flac(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, SAMPLING_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def _failure(error: Exception) -> tuple[str, str]:
    return (error.reason if isinstance(error, BadAudioError) else "undecodable", str(error))


def _cache_audio(samples: np.ndarray, sampling_rate: int, target: Path) -> None:
    """`samples` `(frames, channels)` as soundfile reads them."""
    if samples.shape[0] == 0:
        raise BadAudioError("empty", "0 samples")
    if not np.isfinite(samples).all():
        raise BadAudioError("not_finite", "NaN or infinite samples")
    mono = resample_to_mono(samples.mean(axis=1), sampling_rate, SAMPLING_RATE)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_bytes(_encode_flac(np.clip(mono, -1.0, 1.0)))
    temporary.replace(target)  # a killed run leaves no half-written cache entry


def decode_to_cache(
    utterances: list[Utterance], cache_dir: Path, workers: int = 2, batch_size: int = 64
) -> dict[str, tuple[str, str]]:
    """Makes sure every utterance has a 16 kHz mono FLAC in `cache_dir`; returns those that could not be decoded,
    as `{id: (reason, message)}`."""
    todo = [u for u in utterances if not (cache_dir / u.cache_name).exists()]
    failures: dict[str, tuple[str, str]] = {}
    if not todo:
        return failures
    g722 = [u for u in todo if u.codec == "g722"]
    if g722 and shutil.which("ffmpeg") is None:
        raise FileNotFoundError("ffmpeg is not installed: apt-get install -y --no-install-recommends ffmpeg")
    progress = tqdm(total=len(todo), desc="decoding speech", unit="file")

    def g722_batch(batch: list[Utterance]) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            for utterance, wav in zip(batch, _ffmpeg_decode_g722([u.path for u in batch], Path(scratch))):
                try:
                    if wav is None:
                        raise BadAudioError("undecodable", "ffmpeg could not decode it")
                    samples, rate = soundfile.read(wav, dtype="float32", always_2d=True)
                    _cache_audio(samples, rate, cache_dir / utterance.cache_name)
                except (ValueError, RuntimeError, ArithmeticError, soundfile.LibsndfileError) as error:
                    failures[utterance.id] = _failure(error)
                progress.update()

    def other(utterance: Utterance) -> None:
        try:
            samples, rate = soundfile.read(utterance.path, dtype="float32", always_2d=True)
            _cache_audio(samples, rate, cache_dir / utterance.cache_name)
        except (ValueError, RuntimeError, ArithmeticError, soundfile.LibsndfileError) as error:
            failures[utterance.id] = _failure(error)
        progress.update()

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs = [pool.submit(g722_batch, g722[i : i + batch_size]) for i in range(0, len(g722), batch_size)]
        jobs += [pool.submit(other, u) for u in todo if u.codec != "g722"]
        for job in jobs:
            job.result()
    progress.close()
    return failures


# --- writing the dataset ------------------------------------------------------------------------------------------


def _rows(utterances: list[Utterance], cache_dir: Path, skipped: Counter) -> list[dict]:
    rows = []
    for utterance in utterances:
        path = cache_dir / utterance.cache_name
        if not path.exists():
            continue  # counted as undecodable already
        duration = soundfile.info(path).frames / SAMPLING_RATE
        if duration < MIN_DURATION_SECONDS:
            skipped["too_short"] += 1
            continue
        speaker = SPEAKERS[utterance.speaker_id]
        rows.append(
            {
                "id": utterance.id,
                "audio": {"bytes": path.read_bytes(), "path": utterance.cache_name},
                "speaker_id": utterance.speaker_id,
                "speaker": speaker.name,
                "transcript": utterance.transcript,
                "language": utterance.language,
                "licence": speaker.licence,
                "duration": duration,
            }
        )
    return rows


def write_speech_shards(rows: list[dict], folder: Path, split: str, num_shards: int) -> list[Path]:
    """The Hub's layout, `folder/data/{split}-0000i-of-0000n.parquet`, with the `Audio` feature in the schema
    metadata. Written with pyarrow: `datasets` would encode `Audio` values through torchcodec, which is not needed
    (nor installable for this torch) when the bytes are already FLAC."""
    num_shards = max(1, min(num_shards, len(rows)))
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    schema = SPEECH_FEATURES.arrow_schema
    paths = []
    bounds = np.linspace(0, len(rows), num_shards + 1).astype(int)
    for index in range(num_shards):
        chunk = rows[bounds[index] : bounds[index + 1]]
        table = pa.Table.from_pylist(chunk, schema=schema)
        path = data_dir / f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
        pq.write_table(table, path)
        paths.append(path)
    return paths


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "hf_vqvae" / "speech"


def prepare_speech(
    output_dir: str | Path,
    *,
    sources: Iterable[str] = ("asterisk", "fillets"),
    max_utterances_per_speaker: int | None = None,
    test_fraction: float = 0.05,
    num_shards: int = 8,
    cache_dir: str | Path | None = None,
    workers: int = 2,
    fetch_transcripts: bool = True,
) -> dict:
    """Builds the speech dataset folder and returns (and writes as `dataset_info.json`) its summary: utterances and
    hours per split and speaker, skipped files by cause, speakers with their licences, disk size."""
    output_dir, cache_dir = Path(output_dir), Path(cache_dir or default_cache_dir())
    sources = tuple(sources)
    unknown = set(sources) - {"asterisk", "fillets"}
    if unknown or not sources:
        raise ValueError(f"speech sources must be among 'asterisk', 'fillets'; got {sorted(sources)}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    skipped: Counter = Counter()
    utterances = asterisk_utterances(cache_dir, skipped, fetch_transcripts) if "asterisk" in sources else []
    utterances += fillets_utterances(skipped) if "fillets" in sources else []
    splits = split_per_speaker(utterances, test_fraction, max_utterances_per_speaker)
    failures = decode_to_cache(splits["train"] + splits["test"], cache_dir, workers=workers)
    skipped.update(reason for reason, _ in failures.values())
    for utterance_id, (reason, message) in list(failures.items())[:10]:
        logger.warning("skipped %s: %s (%s)", utterance_id, reason, message)

    info: dict = {"source": "speech", "sampling_rate": SAMPLING_RATE, "splits": {}, "speakers": []}
    for split, members in splits.items():
        rows = _rows(members, cache_dir, skipped)
        write_speech_shards(rows, output_dir, split, num_shards)
        per_speaker = Counter(row["speaker"] for row in rows)
        seconds = Counter()
        for row in rows:
            seconds[row["speaker"]] += row["duration"]
        info["splits"][split] = len(rows)
        info[f"{split}_hours"] = round(sum(seconds.values()) / 3600, 4)
        info[f"{split}_per_speaker"] = {name: [per_speaker[name], round(seconds[name], 1)] for name in per_speaker}
    info["speakers"] = [
        {"id": index, "name": s.name, "description": s.description, "licence": s.licence}
        for index, s in enumerate(SPEAKERS)
    ]
    info["skipped"] = dict(skipped)
    info["disk_bytes"] = sum(path.stat().st_size for path in (output_dir / "data").glob("*.parquet"))
    (output_dir / "dataset_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


def add_speech_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `scripts/prepare_data.py --source speech`."""
    group = parser.add_argument_group("speech (--source speech)")
    group.add_argument("--speech_sources", nargs="+", default=["asterisk", "fillets"], choices=["asterisk", "fillets"])
    group.add_argument(
        "--max_utterances_per_speaker", type=int, default=None, help="keep this many per speaker (quick runs)"
    )
    group.add_argument("--test_fraction", type=float, default=0.05, help="held-out utterances per speaker")
    group.add_argument(
        "--speech_cache_dir", type=Path, default=None, help="decoded 16 kHz FLAC cache (~/.cache/hf_vqvae/speech)"
    )
    group.add_argument("--decode_workers", type=int, default=2, help="parallel ffmpeg / soundfile decoders")


def prepare_speech_from_args(args: argparse.Namespace) -> dict:
    return prepare_speech(
        args.output_dir,
        sources=args.speech_sources,
        max_utterances_per_speaker=args.max_utterances_per_speaker,
        test_fraction=args.test_fraction,
        num_shards=args.num_shards,
        cache_dir=args.speech_cache_dir,
        workers=args.decode_workers,
    )


__all__ = ["SPEAKERS", "SPEAKER_NAMES", "SPEECH_FEATURES", "Speaker", "Utterance", "add_speech_arguments"]
__all__ += ["fetch_transcripts", "prepare_speech", "prepare_speech_from_args", "split_per_speaker"]
