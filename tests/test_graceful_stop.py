"""SIGTERM and Ctrl-C ask training to stop after the current step; repeating the signal stops at once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mlproject.scheduling.graceful_stop import GracefulStop


def send(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs at the next bytecode boundary; give it one


def test_a_signal_during_training_asks_to_stop_and_the_same_one_again_stops_at_once(capsys):
    with GracefulStop() as stop, stop.polled():
        assert not stop.should_stop(1)
        send(signal.SIGTERM)
        assert stop.should_stop(1) and stop.exit_code == 143 and stop.name == "SIGTERM"
        assert "SIGTERM received: finishing this step and writing a checkpoint" in capsys.readouterr().err
        send(signal.SIGINT)  # `mlflow run` passes a Ctrl-C on as SIGTERM: one request, two signals
        assert stop.should_stop(2)
        with pytest.raises(KeyboardInterrupt):
            send(signal.SIGTERM)


def test_after_training_stopped_a_different_signal_does_not_cut_the_wrap_up_short():
    with GracefulStop() as stop:
        with stop.polled():
            send(signal.SIGINT)  # Ctrl-C in the terminal reaches `mlflow run` and the entry point
        send(signal.SIGTERM)  # `mlflow run` then cancels its child, while the run is being marked KILLED
        assert stop.exit_code == 130
        with pytest.raises(KeyboardInterrupt):
            send(signal.SIGINT)


def test_outside_the_training_loop_a_signal_stops_at_once_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with GracefulStop() as stop:
        with pytest.raises(KeyboardInterrupt):
            send(signal.SIGINT)
        assert stop.exit_code == 130
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
