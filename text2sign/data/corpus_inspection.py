"""What a corpus on disk holds, split by split, and what is wrong with it: `python -m text2sign.data inspect`.

Reads every split's table and opens every clip: a frame folder's first image, a video's container
header (its frame count). `decode=True` decodes every frame of every clip, which also finds damage
past the header, at the cost of reading the whole corpus.

Where the corpus has keypoints, it reports their coverage per split: the share of frames in which the
body (neck and both shoulders), the right hand and the left hand were found (any of a hand's points), and
the share of the hand points found that the centred square (the crop the model sees) cuts off. That reads
every keypoint file of a clip, so it reads at most `KEYPOINT_SAMPLE` clips per split, spread evenly over
it, and says so. The keypoints are the ones training reads: shipped with the corpus, or for a corpus that ships
none, the extractor's entries once its first training clip has one (a clip without is then a problem).
A split whose clips mostly show no hand is named under it (`keypoints.hands_missing`).
The fingerspelling lexicon has no clips, only keypoints: every recording is read instead.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np

from text2sign import skeleton
from text2sign.config import DataConfig
from text2sign.data import fingerspelling, how2sign, phoenix
from text2sign.data.keypoints import NO_HANDS_ADVICE, KeypointError, hands_missing, load_track, shows_hands
from text2sign.data.real import SPLITS, CorpusFiles, bad_sample, read_index, with_extracted_keypoints
from text2sign.data.render import DEFAULT_APPEARANCE
from text2sign.data.records import SKIP_HINT, ClipRecord, DataError, Problem
from text2sign.data.spec import DataSpec
from text2sign.data.video_io import ClipError, count_frames, frame_size

_CORPUS_SPLITS = {"phoenix2014t": phoenix.SPLITS, "how2sign": how2sign.SPLITS}
_LISTED_PROBLEMS = 20
KEYPOINT_SAMPLE = 50  # clips per split whose keypoints are read for the coverage figures
_HAND = skeleton.LEFT_HAND - skeleton.RIGHT_HAND  # points per hand


@dataclass
class KeypointCoverage:
    """Counts over the keypoint tracks read, in the source's frames (before temporal sampling)."""

    of: int = 0  # clips of the split with keypoints
    tried: int = 0  # of those, the sample whose keypoints were read
    clips: int = 0  # of those, the ones that could be read
    frames: int = 0
    body: int = 0  # frames with the neck and both shoulders
    right_hand: int = 0  # frames with any point of the hand
    left_hand: int = 0
    hand_points: int = 0  # hand points found, over all frames
    hand_points_cut: int = 0  # of those, outside the centred square
    handless: int = 0  # clips with no hand point inside the centred square in any frame

    def add(self, points: np.ndarray, width: int, height: int, pixel_centre: float) -> None:
        """One clip's track: points [N, 50, 3] in the pixels of a `width` x `height` frame."""
        seen = points[..., 2] > 0
        self.clips += 1
        self.frames += len(points)
        self.body += int(seen[:, [skeleton.NECK, skeleton.RIGHT_SHOULDER, skeleton.LEFT_SHOULDER]].all(1).sum())
        self.right_hand += int(seen[:, skeleton.RIGHT_HAND : skeleton.RIGHT_HAND + _HAND].any(1).sum())
        self.left_hand += int(seen[:, skeleton.LEFT_HAND : skeleton.LEFT_HAND + _HAND].any(1).sum())
        hands = points.copy()
        hands[:, : skeleton.RIGHT_HAND] = skeleton.missing(1)[0, : skeleton.RIGHT_HAND]
        self.hand_points += int(seen[:, skeleton.RIGHT_HAND :].sum())
        squared, cut = skeleton.to_square(hands, width, height, pixel_centre)
        self.hand_points_cut += cut
        self.handless += not shows_hands(squared)


@dataclass
class SplitReport:
    split: str  # ours: train, val, test
    corpus_split: str  # the corpus's own name for it (PHOENIX calls val "dev")
    frames: list[int] = field(default_factory=list)  # per usable clip
    example: ClipRecord | None = None
    problems: list[Problem] = field(default_factory=list)
    error: str = ""  # why the split cannot be read at all
    keypoints: KeypointCoverage | None = None  # None: the corpus has no keypoints

    @property
    def samples(self) -> int:
        return len(self.frames)

    @property
    def usable(self) -> bool:
        return not self.error and self.samples > 0

    @property
    def no_hands(self) -> str:
        """The warning when most clips read show no hand; "" otherwise."""
        return hands_missing(self.keypoints.handless, self.keypoints.clips) if self.keypoints else ""


def inspect_corpus(spec: DataSpec, decode: bool = False) -> list[SplitReport]:
    if spec.kind == "fingerspelling":
        return _inspect_fingerspelling(spec)
    extracted = _reads_extracted_keypoints(spec)
    reports = []
    for split in SPLITS:
        report = SplitReport(split, _CORPUS_SPLITS.get(spec.kind, {}).get(split, split))
        reports.append(report)
        try:
            index = read_index(spec, split)
        except DataError as error:
            report.error = str(error)
            continue
        if extracted:
            index = with_extracted_keypoints(index)
        report.problems = list(index.problems)
        opened = []
        for record in index.records:
            try:
                report.frames.append(count_frames(record.source, decode))
            except ClipError as error:
                report.problems.append(Problem(str(record.source), str(error), "Re-encode or replace the clip"))
                continue
            opened.append(record)
            report.example = report.example or record
        report.keypoints = _keypoint_coverage([r for r in opened if r.keypoints is not None], report.problems)
    return reports


def _reads_extracted_keypoints(spec: DataSpec) -> bool:
    """Whether training reads the corpus's keypoints from the extractor's cache, as `RealCorpus` decides."""
    try:
        corpus = CorpusFiles.open(spec)
    except DataError:
        return False  # a folder corpus without a readable texts.csv: each split says why
    return not corpus.ships_keypoints() and corpus.has_keypoints()


def _inspect_fingerspelling(spec: DataSpec) -> list[SplitReport]:
    """The lexicon's splits as a run with the default data.corpus_seed makes them, every recording read (they are
    small): its frames, and its keypoints placed on the default signer, so that the share the square "cuts off"
    is the share off the frame the model sees. Raises DataError when the package is missing."""
    seed = DataConfig().corpus_seed
    reports = []
    for split, index in fingerspelling.read_splits(fingerspelling.lexicon_folder(spec), seed).items():
        coverage = KeypointCoverage(of=len(index.records), tried=len(index.records))
        report = SplitReport(split, split, problems=list(index.problems), keypoints=coverage)
        for record in index.records:
            try:
                points = fingerspelling.read_recording(record.source, DEFAULT_APPEARANCE)
            except KeypointError as error:
                report.problems.append(fingerspelling.bad_recording(record, error))
                continue
            report.frames.append(len(points))
            report.example = report.example or record
            coverage.add(points, 1, 1, 0.5)  # already in [0, 1]: the frame as a 1 x 1 square
        reports.append(report)
    return reports


def _keypoint_coverage(records: list[ClipRecord], problems: list[Problem]) -> KeypointCoverage | None:
    """Coverage over at most KEYPOINT_SAMPLE of `records`, evenly spread; their unreadable keypoints join `problems`."""
    if not records:
        return None
    chosen = sorted(set(np.linspace(0, len(records) - 1, min(KEYPOINT_SAMPLE, len(records))).round().astype(int)))
    coverage = KeypointCoverage(of=len(records), tried=len(chosen))
    for i in chosen:
        record = records[i]
        try:
            size = frame_size(record.source)
            track = load_track(record.keypoints, size)
        except (ClipError, KeypointError) as error:
            problems.append(bad_sample(record, error))
            continue
        coverage.add(track.points, track.width, track.height, track.pixel_centre)
    return coverage


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def format_coverage(coverage: KeypointCoverage) -> str:
    sample = f"a sample of {coverage.tried} of {coverage.of} clips" if coverage.tried < coverage.of else f"{coverage.of} clips"
    if not coverage.frames:
        return f"    keypoints: none could be read ({sample}; see the problems)"
    read = sample if coverage.clips == coverage.tried else f"{coverage.clips} read of {sample}"
    cut = 100 * coverage.hand_points_cut / coverage.hand_points if coverage.hand_points else 0.0
    return (f"    keypoints ({read}, {coverage.frames} frames): body {_share(coverage.body, coverage.frames)} of frames, "
            f"right hand {_share(coverage.right_hand, coverage.frames)}, left hand {_share(coverage.left_hand, coverage.frames)}; "
            f"the centred square cuts off {cut:.1f}% of the hand points found")


def format_reports(spec: DataSpec, reports: list[SplitReport]) -> str:
    lines = [str(spec)]
    for r in reports:
        title = r.split if r.split == r.corpus_split else f"{r.split} ({r.corpus_split})"
        if r.error:
            lines += [f"  {title}: MISSING OR UNREADABLE", f"    {r.error}"]
            continue
        if r.frames:
            lines.append(f"  {title}: {r.samples} samples, frames per clip {min(r.frames)} / "
                         f"{statistics.median(r.frames):g} / {max(r.frames)} (min / median / max)")
        else:
            lines.append(f"  {title}: NO USABLE SAMPLE")
        if r.example is not None:
            glosses = " ".join(r.example.glosses) or "(none)"
            lines.append(f"    example: {r.example.text!r}  glosses: {glosses}")
        if r.keypoints is not None:
            lines.append(format_coverage(r.keypoints))
        if r.no_hands:
            lines.append(f"    NO HANDS: {r.no_hands}")
        lines.append(f"    problems: {len(r.problems) or 'none'}")
        lines += [f"      {p}" for p in r.problems[:_LISTED_PROBLEMS]]
        if len(r.problems) > _LISTED_PROBLEMS:
            lines.append(f"      ... and {len(r.problems) - _LISTED_PROBLEMS} more")
    lines.append(_verdict(reports))
    return "\n".join(lines)


def _verdict(reports: list[SplitReport]) -> str:
    unusable = [r.split for r in reports if not r.usable]
    if unusable:
        return f"not usable: {', '.join(unusable)} (see above)"
    problems = any(r.problems for r in reports)
    handless = [r.split for r in reports if r.no_hands]
    if not handless:
        return f"usable; fix the samples listed above, {SKIP_HINT}" if problems else "usable; no problems found"
    # Still usable, since the pixel model needs no keypoints; but not "no problems": the plan would learn no hands.
    fix = f" Fix the samples listed above too, {SKIP_HINT}." if problems else ""
    return f"usable, but most clips of {', '.join(handless)} show no hand (NO HANDS above). {NO_HANDS_ADVICE}.{fix}"
