"""The signs the synthetic signer knows: for every gloss, where each hand goes, how, and in which shape.

Every position is written in the hand's *own-side* frame: x points from the body's midline out towards
that hand's side, y points down, both measured in shoulder half-widths from the base of the neck.
Writing both hands in their own-side frame makes a mirror-symmetric two-handed sign a single motion
used twice; the renderer puts each hand on its own side of the body. A dominant hand that
works on the non-dominant one crosses the midline, so it has negative x.

Landmarks in this frame: shoulder joint (1, 0.4), chin (0, -0.25), mouth (0, -0.45), forehead (0, -1.15),
chest (0, 1.1), stomach (0, 2); the arm reaches about 2.3 from the shoulder, the hands rest at (0.9, 2.5). Positions are of the hand's
centre (the palm). Angles give the direction the fingers point, in degrees: 0 outward, 90 down, -90 up,
180 inward (towards the other hand).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Union

import numpy as np

HandShape = Literal["fist", "flat", "point", "open", "c", "v", "y"]
HAND_SHAPES: tuple[HandShape, ...] = ("fist", "flat", "point", "open", "c", "v", "y")

Point = tuple[float, float]


def ease(u: np.ndarray) -> np.ndarray:
    """Smoothstep: a hand accelerates out of a pose and decelerates into the next, as arms do."""
    return u * u * (3.0 - 2.0 * u)


# ---------------------------------------------------------------------------------------------
# Paths: where the hand centre goes during a sign. `positions(u)` is [N, 2] for u in [0, 1] of
# shape [N]; `progress(u)` in [0, 1] drives the change of hand angle and hand shape along the path.


@dataclass(frozen=True)
class Hold:
    """The hand stays at one place (it may still turn or change shape)."""

    at: Point
    kind = "hold"
    periodic = False

    def positions(self, u: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.at, dtype=np.float64), (len(u), 2)).copy()

    def progress(self, u: np.ndarray) -> np.ndarray:
        return ease(u)


@dataclass(frozen=True)
class Line:
    """A straight move from `start` to `end`."""

    start: Point
    end: Point
    kind = "line"
    periodic = False

    def positions(self, u: np.ndarray) -> np.ndarray:
        start, end = np.asarray(self.start), np.asarray(self.end)
        return start + (end - start) * ease(u)[:, None]

    def progress(self, u: np.ndarray) -> np.ndarray:
        return ease(u)


@dataclass(frozen=True)
class Arc:
    """A curved move from `start` to `end`; the middle of the curve is pushed sideways by `bulge`
    chord lengths (positive: to the left of the direction of travel, in image axes)."""

    start: Point
    end: Point
    bulge: float
    kind = "arc"
    periodic = False

    def positions(self, u: np.ndarray) -> np.ndarray:
        start, end = np.asarray(self.start), np.asarray(self.end)
        chord = end - start
        normal = np.array([chord[1], -chord[0]])
        # A quadratic Bezier passes its control point's pull at half strength: double it so the
        # curve's midpoint sits `bulge` chord lengths off the chord.
        control = (start + end) / 2 + 2.0 * self.bulge * normal
        s = ease(u)[:, None]
        return (1 - s) ** 2 * start + 2 * (1 - s) * s * control + s**2 * end

    def progress(self, u: np.ndarray) -> np.ndarray:
        return ease(u)


@dataclass(frozen=True)
class Circle:
    """`turns` full circles of `radius` around `centre`, starting at `start_angle` degrees
    (0: on the outward side of the centre, -90: above it) and turning downward on the outward side."""

    centre: Point
    radius: float
    turns: int = 1
    start_angle: float = -90.0
    kind = "circle"
    periodic = True

    def positions(self, u: np.ndarray) -> np.ndarray:
        theta = np.radians(self.start_angle) + 2.0 * np.pi * self.turns * u
        return np.asarray(self.centre) + self.radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)

    def progress(self, u: np.ndarray) -> np.ndarray:
        return u


@dataclass(frozen=True)
class Repeat:
    """`times` strokes from `start` to `end` and back (taps, nods, shakes; with start == end the hand
    moves only by turning or changing shape, e.g. a wave)."""

    start: Point
    end: Point
    times: int = 2
    kind = "repeat"
    periodic = True

    def positions(self, u: np.ndarray) -> np.ndarray:
        start, end = np.asarray(self.start), np.asarray(self.end)
        return start + (end - start) * self.progress(u)[:, None]

    def progress(self, u: np.ndarray) -> np.ndarray:
        return (1.0 - np.cos(2.0 * np.pi * self.times * u)) / 2.0


Path = Union[Hold, Line, Arc, Circle, Repeat]
MOTION_KINDS = ("hold", "line", "arc", "circle", "repeat")


@dataclass(frozen=True)
class HandMotion:
    """One hand during one sign: its path, its finger direction and its hand shape.

    The angle goes from `angle` to `angle_end` and the shape from `shape` to `shape_end` as the
    path progresses (on a Repeat, back and forth with each stroke). `phase` shifts a periodic path
    in time, which is how alternating two-handed signs are made.
    """

    path: Path
    shape: HandShape
    angle: float
    shape_end: HandShape | None = None
    angle_end: float | None = None
    phase: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in HAND_SHAPES or (self.shape_end is not None and self.shape_end not in HAND_SHAPES):
            raise ValueError(f"unknown hand shape in {self}; known: {', '.join(HAND_SHAPES)}")
        if self.phase and not self.path.periodic:
            raise ValueError(f"a phase shift needs a periodic path (circle or repeat), not {self.path.kind}")


@dataclass(frozen=True)
class HandTrack:
    """A hand motion sampled at N instants."""

    centre: np.ndarray  # [N, 2] own-side units
    angle: np.ndarray  # [N] radians
    shape_mix: np.ndarray  # [N] 0: the motion's `shape`, 1: its `shape_end`


def hand_track(motion: HandMotion, u: np.ndarray) -> HandTrack:
    """Sample `motion` at normalized times `u` [N] in [0, 1]."""
    u = np.asarray(u, dtype=np.float64)
    if motion.phase:
        u = (u + motion.phase) % 1.0
    progress = motion.path.progress(u)
    angle_end = motion.angle if motion.angle_end is None else motion.angle_end
    angle = np.radians(motion.angle + (angle_end - motion.angle) * progress)
    shape_mix = progress if motion.shape_end is not None else np.zeros_like(u)
    return HandTrack(centre=motion.path.positions(u), angle=angle, shape_mix=shape_mix)


# Arms hang down, hands in front of the thighs: where every video starts and where a hand a sign does
# not use goes back to.
REST = HandMotion(Hold((0.9, 2.5)), "flat", 100)

Handedness = Literal["one-handed", "symmetric", "alternating", "dominant-on-base"]


@dataclass(frozen=True)
class Sign:
    gloss: str
    dominant: HandMotion
    non_dominant: HandMotion | None = None  # None: that hand stays at REST
    duration: float = 1.0  # in beats; the renderer shares a clip's frames out by duration

    @property
    def handedness(self) -> Handedness:
        if self.non_dominant is None:
            return "one-handed"
        if self.non_dominant == self.dominant:
            return "symmetric"
        if dataclasses.replace(self.non_dominant, phase=self.dominant.phase) == self.dominant:
            return "alternating"
        return "dominant-on-base"

    def tracks(self, u: np.ndarray) -> tuple[HandTrack, HandTrack]:
        """(dominant, non-dominant) hand tracks at normalized times `u` [N]."""
        return hand_track(self.dominant, u), hand_track(self.non_dominant or REST, u)


def one(gloss: str, motion: HandMotion, duration: float = 1.0) -> Sign:
    return Sign(gloss, motion, None, duration)


def both(gloss: str, motion: HandMotion, duration: float = 1.0) -> Sign:
    """Both hands do the same motion, mirrored."""
    return Sign(gloss, motion, motion, duration)


def alternating(gloss: str, motion: HandMotion, duration: float = 1.0) -> Sign:
    """Both hands do the same periodic motion, half a cycle apart."""
    return Sign(gloss, motion, dataclasses.replace(motion, phase=0.5), duration)


def on_base(gloss: str, dominant: HandMotion, base: HandMotion, duration: float = 1.0) -> Sign:
    """The dominant hand acts on or around the non-dominant hand."""
    return Sign(gloss, dominant, base, duration)


# A non-dominant flat hand, palm up in front of the body: the base many two-handed signs act on.
# Its centre is at x = -0.4 in the dominant hand's frame.
PALM_UP = HandMotion(Hold((0.4, 1.5)), "flat", 180)
FIST_BASE = HandMotion(Hold((0.4, 1.45)), "fist", 180)
H = HandMotion  # the table below is long: a short name keeps each sign on one line

_SIGNS = (
    # Pronouns and possessives
    one("I", H(Hold((0.15, 1.0)), "point", 160), duration=0.8),
    one("YOU", H(Line((0.35, 1.45), (0.6, 1.05)), "point", -75), duration=0.8),
    one("WE", H(Arc((0.45, 0.9), (-0.45, 0.9), -0.3), "point", -150, angle_end=-30)),
    one("THEY", H(Line((0.6, 1.3), (1.7, 1.1)), "point", 0, angle_end=-20)),
    one("MY", H(Hold((0.3, 1.35)), "flat", 170), duration=0.8),
    one("YOUR", H(Repeat((0.45, 1.45), (0.5, 1.05), 1), "flat", -90), duration=0.8),
    # People and animals
    one("MOTHER", H(Repeat((0.35, -0.2), (0.2, -0.3), 2), "open", -110)),
    one("FATHER", H(Repeat((0.35, -1.15), (0.2, -1.25), 2), "open", -110)),
    alternating("FRIEND", H(Repeat((0.1, 1.25), (0.3, 0.95), 2), "point", 180, angle_end=-150)),
    one("CHILD", H(Repeat((1.35, 1.9), (1.35, 2.2), 2), "flat", 0)),
    on_base("DOCTOR", H(Repeat((-0.75, 1.2), (-0.75, 1.4), 2), "v", 90), PALM_UP),
    one("DOG", H(Repeat((1.3, 2.35), (1.3, 2.7), 2), "flat", 90)),
    both("CAT", H(Line((0.35, -0.45), (1.0, -0.5)), "v", 0)),
    # Things and places
    both("HOUSE", H(Line((0.12, 0.55), (0.85, 1.2)), "flat", -125, angle_end=-90)),
    on_base("SCHOOL", H(Repeat((-0.4, 1.0), (-0.4, 1.35), 2), "flat", 180), PALM_UP),
    alternating("CAR", H(Repeat((0.55, 1.1), (0.55, 1.45), 2), "fist", -90)),
    both("BOOK", H(Line((0.15, 1.3), (0.45, 1.3)), "flat", -90, angle_end=-10)),
    one("PHONE", H(Line((0.8, 0.3), (0.6, -0.6)), "y", -100)),
    on_base("MONEY", H(Repeat((-0.4, 1.1), (-0.4, 1.35), 3), "fist", 90), PALM_UP, duration=1.2),
    # Food and drink
    one("FOOD", H(Repeat((0.05, -0.4), (0.3, 0.1), 2), "fist", -120)),
    one("WATER", H(Repeat((0.05, -0.45), (0.25, -0.35), 2), "v", -60)),
    on_base("COFFEE", H(Circle((-0.4, 1.15), 0.2, 2), "fist", 180), FIST_BASE, duration=1.2),
    # Actions
    both("GO", H(Arc((0.35, 1.1), (1.3, 0.7), 0.2), "point", -90, angle_end=-10)),
    both("COME", H(Arc((1.3, 0.7), (0.35, 1.1), -0.2), "point", -10, angle_end=-150)),
    one("EAT", H(Line((0.6, 0.8), (0.05, -0.4)), "fist", -120), duration=0.8),
    one("DRINK", H(Arc((0.5, 0.9), (0.1, -0.35), 0.2), "c", -90, angle_end=-150)),
    one("SEE", H(Line((0.2, -0.75), (0.6, 0.2)), "v", -90, angle_end=-60)),
    on_base("READ", H(Repeat((-0.35, 0.9), (-0.35, 1.4), 2), "v", 90), H(Hold((0.35, 1.2)), "flat", -90)),
    on_base("BUY", H(Line((-0.35, 1.35), (0.8, 0.9)), "fist", 180, shape_end="flat", angle_end=0), PALM_UP),
    both("WANT", H(Line((0.9, 1.5), (0.5, 1.15)), "c", -30, angle_end=-80)),
    one("LIKE", H(Line((0.1, 1.0), (0.7, 1.2)), "open", 180, shape_end="fist", angle_end=-90)),
    both("LOVE", H(Line((0.5, 0.9), (-0.15, 1.1)), "fist", -120)),
    both("HAVE", H(Line((0.8, 0.9), (0.35, 1.1)), "flat", 180), duration=0.8),
    on_base("HELP", H(Line((-0.35, 1.55), (-0.35, 0.95)), "fist", -90), H(Line((0.35, 1.8), (0.35, 1.2)), "flat", 180)),
    both("LIVE", H(Line((0.4, 2.0), (0.4, 1.0)), "y", -90)),
    one("SLEEP", H(Line((0.1, -0.9), (0.1, -0.2)), "open", -90, shape_end="fist")),
    on_base("WORK", H(Repeat((-0.75, 1.15), (-0.75, 1.4), 2), "fist", 135), FIST_BASE),
    both("PLAY", H(Repeat((1.0, 1.2), (1.0, 1.2), 3), "y", -120, angle_end=-60), duration=1.2),
    both("WAIT", H(Repeat((1.2, 1.5), (1.3, 1.45), 3), "open", -20, angle_end=10), duration=1.2),
    one("KNOW", H(Repeat((0.55, -1.0), (0.7, -0.85), 2), "flat", -120)),
    one("UNDERSTAND", H(Hold((0.5, -1.1)), "fist", -90, shape_end="point")),
    # Qualities and feelings
    both("BIG", H(Line((0.3, 1.25), (1.5, 1.25)), "c", -90, angle_end=-40)),
    both("SMALL", H(Line((0.9, 1.3), (0.25, 1.3)), "flat", -90)),
    on_base("GOOD", H(Line((0.05, -0.3), (-0.3, 1.3)), "flat", -90, angle_end=180), PALM_UP),
    one("BAD", H(Line((0.05, -0.3), (0.9, 1.2)), "flat", -90, angle_end=90)),
    on_base("NEW", H(Arc((-0.7, 1.2), (0.3, 1.2), 0.35), "flat", 180, angle_end=-150), PALM_UP),
    one("OLD", H(Line((0.05, -0.15), (0.05, 0.9)), "fist", -90)),
    one("BEAUTIFUL", H(Circle((0.0, -0.65), 0.65, 1), "open", -90, shape_end="fist"), duration=1.2),
    alternating("HAPPY", H(Circle((0.4, 1.0), 0.3, 2), "flat", 170), duration=1.2),
    both("SAD", H(Line((0.3, -0.95), (0.35, 0.1)), "open", -90)),
    both("TIRED", H(Hold((0.55, 1.0)), "flat", 170, angle_end=100)),
    one("HUNGRY", H(Line((0.0, 0.7), (0.0, 1.9)), "c", 180)),
    on_base("SICK", H(Hold((0.25, -1.05)), "open", -120), H(Hold((0.2, 1.9)), "open", 170)),
    # Time
    both("NOW", H(Line((0.7, 1.05), (0.7, 1.45)), "y", -90), duration=0.8),
    both("TODAY", H(Repeat((0.7, 1.05), (0.7, 1.45), 2), "y", -90)),
    one("TOMORROW", H(Arc((0.5, -0.5), (1.2, -0.2), -0.3), "fist", -90, angle_end=-10)),
    one("YESTERDAY", H(Arc((0.5, -0.4), (0.85, -0.9), 0.3), "y", -60, angle_end=-120)),
    on_base("NIGHT", H(Arc((0.0, 0.8), (-0.6, 1.35), -0.3), "flat", 135, angle_end=160), H(Hold((0.5, 1.5)), "flat", 180)),
    # Questions
    both("WHAT", H(Repeat((1.0, 1.6), (1.25, 1.6), 2), "open", 20)),
    one("WHERE", H(Repeat((0.7, 0.5), (1.1, 0.5), 2), "point", -90)),
    one("WHO", H(Circle((0.05, -0.45), 0.15, 2), "point", -60)),
    one("WHY", H(Line((0.2, -1.1), (0.9, -0.5)), "flat", -100, shape_end="y", angle_end=-60)),
    both("HOW", H(Hold((0.25, 1.3)), "fist", 90, angle_end=-30)),
    on_base("WHEN", H(Circle((-0.35, 0.95), 0.3, 1), "point", -90), H(Hold((0.35, 1.4)), "point", -90)),
    # Social
    one("HELLO", H(Line((0.55, -1.0), (1.4, -0.6)), "flat", -80)),
    one("BYE", H(Repeat((1.2, 0.2), (1.2, 0.2), 3), "open", -120, angle_end=-60), duration=1.2),
    one("THANK-YOU", H(Arc((0.05, -0.3), (0.9, 0.5), -0.25), "flat", -90, angle_end=-40)),
    one("PLEASE", H(Circle((0.1, 1.15), 0.35, 1), "flat", 170)),
    one("SORRY", H(Circle((0.1, 1.15), 0.35, 2), "fist", 170), duration=1.2),
    one("YES", H(Repeat((0.6, 1.0), (0.6, 1.3), 2), "fist", -90, angle_end=0)),
    one("NOT", H(Line((0.05, -0.1), (0.7, 0.5)), "fist", -90), duration=0.8),
    on_base("NAME", H(Repeat((-0.2, 1.0), (-0.2, 1.2), 2), "v", 180), H(Hold((0.3, 1.3)), "v", 180)),
    # Weather
    both("RAIN", H(Repeat((0.8, 0.7), (0.8, 1.5), 2), "open", 90)),
    both("SNOW", H(Line((0.6, 0.4), (1.1, 1.8)), "open", 90, angle_end=70)),
    one("SUN", H(Circle((0.65, -1.25), 0.22, 1), "c", -45)),
    one("HOT", H(Line((0.05, -0.45), (0.8, 0.3)), "c", -90, shape_end="open", angle_end=0)),
    both("COLD", H(Repeat((0.55, 0.95), (0.7, 0.95), 4), "fist", -90), duration=1.2),
)

LEXICON: dict[str, Sign] = {sign.gloss: sign for sign in _SIGNS}
assert len(LEXICON) == len(_SIGNS), "a gloss is defined twice in the lexicon"


def lookup(gloss: str) -> Sign:
    try:
        return LEXICON[gloss]
    except KeyError:
        raise KeyError(f"gloss {gloss!r} is not in the synthetic lexicon ({len(LEXICON)} glosses)") from None
