"""Keypoints for a corpus that ships none, extracted once with MediaPipe Holistic and kept on disk.

MediaPipe 0.10.21 (the last release whose wheel holds its pose and hand models, so nothing downloads at
run time) needs numpy < 2 and protobuf < 5, which the main environment cannot have. It therefore lives
in an environment of its own, made once by `python -m text2sign.data setup-extractor` (~1 GB, at
`~/.cache/text2sign/keypoint-extractor`, or where TEXT2SIGN_EXTRACTOR_ENV points), and runs there as
worker processes (`mediapipe_worker.py`) that this side feeds clip by clip.

The cache: one entry per clip, `ROOT/ab/<key>.npz`, keyed by the clip's content (the SHA-256 of the
video file's bytes, or of a frame folder's images' bytes in frame order) with the extractor's and
MediaPipe's versions and the model complexity, so a clip moved elsewhere keeps its keypoints and a
changed one is extracted again. Hashing a corpus's bytes at every look-up would be slow, so each clip's
hash is remembered in `ROOT/content-hashes/`, one small file per clip path with the fingerprint (each
file's name, size and mtime) it was computed for; a clip whose fingerprint changed is hashed again.
Entries are written to a temporary file and renamed: an interrupted run loses only the clips in flight,
and a rerun skips every clip whose entry is there and valid. Nothing is evicted: delete the folder to
reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import zipfile
from collections import deque
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from text2sign.config import DataConfig
from text2sign.data import mediapipe_worker as worker
from text2sign.data.keypoints import KeypointError, KeypointTrack
from text2sign.data.video_io import fingerprint, frame_files

REQUIREMENTS = (f"mediapipe=={worker.MEDIAPIPE_VERSION}", "numpy>=1.24,<2")
SETUP_COMMAND = "python -m text2sign.data setup-extractor"
ENV_VARIABLE = "TEXT2SIGN_EXTRACTOR_ENV"
KEYPOINTS_VARIABLE = "TEXT2SIGN_KEYPOINTS"
DEFAULT_ENV = "~/.cache/text2sign/keypoint-extractor"
_STAMP = "text2sign-extractor.json"  # written last by setup: an environment without it is unfinished
MODEL_COMPLEXITY = worker.MODEL_COMPLEXITY
_WORKER = Path(worker.__file__)
# The models Holistic loads at model complexity 1; setup checks the wheel holds them (no download later).
MODELS = ("pose_detection/pose_detection.tflite", "pose_landmark/pose_landmark_full.tflite",
          "palm_detection/palm_detection_full.tflite", "hand_landmark/hand_landmark_full.tflite",
          "holistic_landmark/hand_recrop.tflite", "face_detection/face_detection_short_range.tflite",
          "face_landmark/face_landmark.tflite")


class ExtractorMissing(Exception):
    """The extractor's environment is absent, unfinished or made for other requirements."""


# ---- where things are


def extractor_env() -> Path:
    return Path(os.environ.get(ENV_VARIABLE) or DEFAULT_ENV).expanduser()


def default_cache_root() -> Path:
    """Where extracted keypoints are kept, and where training looks for them: $TEXT2SIGN_KEYPOINTS, else
    `keypoints/` beside the clip cache's default folder, ~/.cache/text2sign/keypoints."""
    if os.environ.get(KEYPOINTS_VARIABLE):
        return Path(os.environ[KEYPOINTS_VARIABLE]).expanduser()
    clips = next(f.default for f in fields(DataConfig) if f.name == "cache_dir")
    return Path(clips).expanduser().parent / "keypoints"


def default_processes() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def extractor_python(env: Path | None = None) -> Path:
    """The extractor environment's interpreter. Raises ExtractorMissing naming the command that makes it."""
    env = env or extractor_env()
    try:
        stamp = json.loads((env / _STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamp = None
    python = _env_python(env)
    if stamp is None or not python.exists():
        raise ExtractorMissing(f"the keypoint extractor's environment is not set up at {env}. Create it once with: "
                               f"{SETUP_COMMAND} (a virtual environment of ~1 GB with {', '.join(REQUIREMENTS)}; "
                               f"{ENV_VARIABLE}=DIR puts it elsewhere).")
    if stamp.get("requirements") != list(REQUIREMENTS):
        raise ExtractorMissing(f"the keypoint extractor's environment at {env} was made for "
                               f"{stamp.get('requirements')}, this version needs {list(REQUIREMENTS)}. "
                               f"Remake it with: {SETUP_COMMAND}")
    return python


def setup_extractor(env: Path | None = None, base_python: str | None = None) -> Path:
    """Create (or remake) the extractor's environment from `base_python` (default: this interpreter); returns its
    interpreter. Raises ExtractorMissing if that cannot be done."""
    env = env or extractor_env()
    try:
        return extractor_python(env)
    except ExtractorMissing:
        pass
    if env.exists() and any(env.iterdir()) and not (env / "pyvenv.cfg").is_file():
        raise ExtractorMissing(f"{env} holds files and is no virtual environment: not overwritten. Point "
                               f"{ENV_VARIABLE} at a new folder.")
    print(f"creating the keypoint extractor's environment at {env}", file=sys.stderr)
    # clear: a half-made (or outdated) environment is started afresh.
    made = subprocess.run([base_python or sys.executable, "-m", "venv", "--clear", str(env)])
    if made.returncode != 0:
        raise ExtractorMissing(f"{base_python or sys.executable} -m venv could not create {env} "
                               f"(its messages are above)")
    python = _env_python(env)
    install = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", *REQUIREMENTS])
    if install.returncode != 0:
        raise ExtractorMissing(f"pip could not install {' '.join(REQUIREMENTS)} into {env} (exit code "
                               f"{install.returncode}; its messages are above). mediapipe {worker.MEDIAPIPE_VERSION} "
                               f"has wheels for CPython 3.9-3.12 only: on another Python, give one of those with "
                               f"{SETUP_COMMAND} --python python3.12")
    check = subprocess.run([str(python), "-I", "-c", _CHECK, *MODELS], capture_output=True, text=True)
    if check.returncode != 0:
        raise ExtractorMissing(f"the extractor's environment at {env} was installed but cannot run: "
                               f"{check.stderr.strip()}")
    (env / _STAMP).write_text(json.dumps({"requirements": list(REQUIREMENTS)}) + "\n", encoding="utf-8")
    return python


# Runs in the new environment: everything imports and the wheel holds every model Holistic needs.
_CHECK = """
import os, sys
import cv2, numpy, mediapipe
root = os.path.join(os.path.dirname(mediapipe.__file__), "modules")
missing = [m for m in sys.argv[1:] if not os.path.isfile(os.path.join(root, m))]
if missing:
    sys.exit("mediapipe's wheel lacks " + ", ".join(missing) + ": it would download them at run time")
"""


# ---- the cache


def _hash_content(source: Path) -> str:
    digest = hashlib.sha256()
    files = frame_files(source) if source.is_dir() else [source]
    if not files:
        raise OSError(f"{source} holds no frame images (.png, .jpg)")
    for path in files:
        digest.update(f"{path.stat().st_size}\n".encode())  # each file's length: no two splits of bytes collide
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def content_hash(source: Path, cache_root: Path) -> str:
    """The SHA-256 of the clip's bytes, from the memo in `cache_root` while the clip's fingerprint is unchanged.
    Raises OSError for a clip that cannot be read."""
    source = source.absolute()
    name = hashlib.sha256(str(source).encode()).hexdigest()
    memo = cache_root / "content-hashes" / name[:2] / f"{name}.json"
    before = [list(f) for f in fingerprint(source)]
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
        if known["source"] == str(source) and known["fingerprint"] == before:
            return known["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    content = _hash_content(source)
    if [list(f) for f in fingerprint(source)] == before:  # not memoised if the clip changed while being read
        try:
            _write_atomic(memo, json.dumps({"source": str(source), "fingerprint": before, "sha256": content}).encode())
        except OSError:
            pass  # a read-only cache still answers; it hashes again next time
    return content


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def entry_path(content: str, cache_root: Path) -> Path:
    payload = {"content": content, "extractor": worker.EXTRACTOR_VERSION, "mediapipe": worker.MEDIAPIPE_VERSION,
               "model_complexity": worker.MODEL_COMPLEXITY}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return cache_root / key[:2] / f"{key}.npz"


def extracted_track(source: Path, cache_root: Path) -> Path | None:
    """Where the clip's extracted keypoints are (read them with `read_entry`); None if it was never extracted,
    or the clip cannot be read."""
    try:
        path = entry_path(content_hash(source, cache_root), cache_root)
    except OSError:
        return None
    return path if path.is_file() else None


def read_entry(path: Path) -> KeypointTrack:
    """An extracted entry as a KeypointTrack: one row per frame of the clip, aligned with it by position
    (fps None: the worker decoded every frame, so row n is frame n). Raises KeypointError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as entry:
            points, width, height = entry["points"], int(entry["width"]), int(entry["height"])
            frames, version, checksum = int(entry["frames"]), int(entry["version"]), str(entry["sha256"])
    except FileNotFoundError:
        raise KeypointError(f"{path}: missing") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise KeypointError(f"{path}: not a readable keypoint entry ({error}); delete it and extract again") from None
    if points.dtype != np.float32 or points.ndim != 3 or points.shape[1:] != (worker.NUM_POINTS, 3):
        raise KeypointError(f"{path}: points are {points.dtype} {points.shape}, expected float32 [N, 50, 3]")
    if len(points) != frames or frames == 0 or width <= 0 or height <= 0:
        raise KeypointError(f"{path}: {len(points)} rows for {frames} frames of {width}x{height}")
    if version != worker.EXTRACTOR_VERSION:
        raise KeypointError(f"{path}: written by extractor version {version}, this is {worker.EXTRACTOR_VERSION}")
    if worker.checksum(points) != checksum:
        raise KeypointError(f"{path}: points do not match their checksum (a damaged file); delete it and extract again")
    return KeypointTrack(points=points, width=width, height=height, pixel_centre=0.5)


def _valid(path: Path) -> bool:
    try:
        read_entry(path)
    except KeypointError:
        return False
    return True


# ---- the workers


def worker_command(python: Path) -> list[str]:
    """How a worker starts. -I (isolated): no PYTHONPATH (the main environment's packages) leaks in, and the
    script's folder (text2sign/data/) is not put on sys.path, where its modules could shadow installed ones."""
    return [str(python), "-I", str(_WORKER)]


class _Worker:
    """One worker process in the extractor's environment, started on first use and again after a crash."""

    def __init__(self, python: Path) -> None:
        self.python = python
        self.process: subprocess.Popen | None = None
        self.log: deque[str] = deque(maxlen=20)

    def _start(self) -> subprocess.Popen:
        environment = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
        process = subprocess.Popen(worker_command(self.python), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, bufsize=1, env=environment)
        threading.Thread(target=self._drain, args=(process.stderr,), daemon=True).start()
        return process

    def _drain(self, stderr) -> None:
        # All along, so a chatty worker never blocks on a full pipe; the tail explains a crash.
        with stderr:
            self.log.extend(line.rstrip() for line in stderr)

    def extract(self, source: Path, entry: Path) -> str | None:
        """Writes the clip's entry; None when done, else why not."""
        if self.process is None:
            self.process = self._start()
        process = self.process
        request = {"source": str(source.absolute()), "entry": str(entry),
                   "frames": [str(p.absolute()) for p in frame_files(source)] if source.is_dir() else None}
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            line = process.stdout.readline()
        except (BrokenPipeError, OSError, ValueError):
            line = ""
        if not line:
            code = self._end(process)
            tail = " | ".join(list(self.log)[-3:])
            return f"the extractor process died on it (exit code {code}){': ' + tail if tail else ''}"
        reply = json.loads(line)
        return None if reply["ok"] else reply["error"]

    def _end(self, process: subprocess.Popen, kill: bool = False) -> int:
        if kill:
            process.kill()
        for pipe in (process.stdin, process.stdout):
            try:
                pipe.close()  # the worker's end of stdin: it finishes its loop and exits
            except OSError:
                pass  # a dead worker's unflushed request
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        self.process = None
        return code

    def close(self) -> None:
        if self.process is not None:
            self._end(self.process)

    def kill(self) -> None:
        if self.process is not None:
            self._end(self.process, kill=True)


@dataclass
class Summary:
    extracted: int = 0
    cached: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.extracted} clips extracted, {self.cached} skipped as already extracted, "
                 f"{len(self.failed)} failed"]
        lines += [f"  failed: {source}: {why}" for source, why in self.failed]
        return "\n".join(lines)


def extract_clips(sources: list[Path], cache_root: Path, processes: int, python: Path) -> Summary:
    """Extract every clip of `sources` not already in the cache, with `processes` workers; a progress bar
    on a terminal. A clip that fails is reported at once and in the summary; the others go on."""
    todo: queue.Queue[Path] = queue.Queue()
    for source in sources:
        todo.put(source)
    results: queue.Queue[tuple[Path, str, str]] = queue.Queue()
    stop = threading.Event()
    workers = [_Worker(python) for _ in range(max(1, min(processes, len(sources))))]
    lanes = [threading.Thread(target=_lane, args=(w, todo, results, stop, cache_root), daemon=True) for w in workers]
    for thread in lanes:
        thread.start()
    try:
        summary = _collect(results, len(sources))
    except BaseException:
        stop.set()
        for process in workers:
            process.kill()
        raise
    for thread in lanes:
        thread.join()
    for process in workers:
        process.close()
    return summary


def _lane(process: _Worker, todo: queue.Queue, results: queue.Queue, stop: threading.Event, cache_root: Path) -> None:
    """One worker's thread: it takes clips from `todo` until none is left (or `stop`), and puts each one's
    (source, outcome, why) in `results`."""
    # Each lane hashes and checks its own clips too, so a big corpus's first hashing runs in parallel.
    while not stop.is_set():
        try:
            source = todo.get_nowait()
        except queue.Empty:
            return
        try:
            outcome, why = _extract_one(process, source, cache_root)
        except Exception as error:  # every clip gets its line, or the main thread would wait for it forever
            outcome, why = "failed", f"{type(error).__name__}: {error}"
        results.put((source, outcome, why))


def _extract_one(process: _Worker, source: Path, cache_root: Path) -> tuple[str, str]:
    """("extracted" | "cached" | "failed", why it failed) for one clip."""
    try:
        entry = entry_path(content_hash(source, cache_root), cache_root)
    except OSError as error:
        return "failed", f"cannot be read ({error.strerror or error})"
    if _valid(entry):
        return "cached", ""
    why = process.extract(source, entry)
    if why is None and not _valid(entry):
        why = "the extractor wrote no valid entry"
    return ("failed", why) if why else ("extracted", "")


def _collect(results: queue.Queue, count: int) -> Summary:
    """The `count` clips' outcomes as the lanes report them, each failure on stderr at once."""
    summary = Summary()
    # disable=None: a bar on a terminal only; the summary is printed either way.
    with tqdm(total=count, desc="extracting keypoints", unit="clip", disable=None) as bar:
        for _ in range(count):
            source, outcome, why = results.get()
            if outcome == "failed":
                summary.failed.append((source, why))
                tqdm.write(f"failed: {source}: {why}", file=sys.stderr)
            elif outcome == "cached":
                summary.cached += 1
            else:
                summary.extracted += 1
            bar.update()
            bar.set_postfix(extracted=summary.extracted, cached=summary.cached, failed=len(summary.failed))
    return summary


def corpus_sources(records_by_split: dict[str, list]) -> list[Path]:
    """Every split's clips, each once (a clip two rows share is extracted once), in corpus order."""
    seen: dict[Path, None] = {}
    for records in records_by_split.values():
        for record in records:
            seen.setdefault(record.source, None)
    return list(seen)
