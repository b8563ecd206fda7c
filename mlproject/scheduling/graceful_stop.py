"""SIGTERM and Ctrl-C stop a training run cleanly: the current step finishes, a checkpoint is written.

A scheduler (SLURM, Kubernetes, systemd) sends SIGTERM and waits a grace period before SIGKILL;
finishing one optimizer step and saving fits in it, and loses nothing a resume cannot continue.
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """While installed, SIGINT/SIGTERM ask the training loop to stop at the next step boundary.

    The loop polls `should_stop` inside `polled()`. Outside it (setup, evaluation, registration) nothing
    polls, so a first signal there raises KeyboardInterrupt at once, as does the same signal a second
    time anywhere: the user who presses Ctrl-C twice wants out now. A *different* later signal is taken
    as the same request and changes nothing: `mlflow run` answers the Ctrl-C it receives itself by
    sending its entry point SIGTERM, which must not cut short the checkpoint or the run's final status.
    """

    def __init__(self) -> None:
        self.signum: int | None = None  # the first stop signal received
        self._received: set[int] = set()
        self._polled = 0  # how many polled() blocks are open: they nest
        self._previous: dict[int, object] = {}

    def __enter__(self) -> GracefulStop:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @contextmanager
    def polled(self) -> Iterator[None]:
        self._polled += 1
        try:
            yield
        finally:
            self._polled -= 1

    def should_stop(self, step: int) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (130 for Ctrl-C)."""
        return 128 + (self.signum or signal.SIGINT)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum or signal.SIGINT).name

    def _handle(self, signum: int, frame: object) -> None:
        first, repeated = not self._received, signum in self._received
        self._received.add(signum)
        self.signum = self.signum or signum
        if repeated or (first and self._polled == 0):
            raise KeyboardInterrupt(signal.Signals(signum).name)
        if first:
            print(f"\n{signal.Signals(signum).name} received: finishing this step and writing a checkpoint; "
                  "send it again to stop at once.", file=sys.stderr, flush=True)
