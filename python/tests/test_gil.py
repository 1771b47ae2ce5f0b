"""The GIL is released while the library works. Proved without timing ratios, so the tests run
(and can fail) on a loaded machine too: a Python thread records the time of every iteration of
a loop; with the GIL held by a call, no Python thread runs at all until the call returns, so the
loop's timestamps show a pause as long as the whole call. Released, the loop only pauses for
the scheduler's slices (milliseconds to ~0.1 s on a busy machine). The "two threads in < 1.6x
the time of one" figure needs two free cores, so it is a benchmark (python/bench/overhead.py
--gil), not a test."""
import threading
import time

import numpy as np
import pytest

import semat
from conftest import synthetic_scene


@pytest.fixture
def one_cv_thread():
    # One OpenCV thread per call, so each matte is CPU-bound on one core.
    before = semat._semat._get_cv_threads()
    semat.set_num_threads(1)
    yield
    semat.set_num_threads(before)


def _scene():
    image, _, box = synthetic_scene(h=240, w=320, seed=5)
    return image, box


class Ticker:
    """A pure-Python loop on its own thread: the time of each iteration, until stopped."""

    def __init__(self):
        self.times = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        times, now, stop = self.times, time.perf_counter, self._stop.is_set
        while not stop():
            times.append(now())

    def __enter__(self):
        self._thread.start()
        while not self.times:  # running before the calls start
            time.sleep(0.001)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def longest_pause(self, start, end):
        """The longest stretch of [start, end] without an iteration."""
        t = np.asarray([start] + [x for x in self.times if start < x < end] + [end])
        return float(np.max(np.diff(t)))


def _timed(fn, out, i):
    start = time.perf_counter()
    out[i] = (fn(), start, time.perf_counter())


def test_the_ticker_sees_a_held_gil():
    # The control: a C loop that keeps the GIL (builtin sum over a range runs no bytecode, so it
    # never offers the GIL to other threads) stops the ticker for the whole call.
    out = [None]
    with Ticker() as ticker:
        call = threading.Thread(target=_timed, args=(lambda: sum(range(10_000_000)), out, 0))
        call.start()
        call.join()
    _, start, end = out[0]
    assert ticker.longest_pause(start, end) > 0.5 * (end - start)


def test_python_runs_while_a_matte_runs(one_cv_thread):
    image, box = _scene()
    semat.matte(image, boxes=box)  # warm-up (engine cache, first-call allocations)
    out = [None]
    with Ticker() as ticker:
        call = threading.Thread(target=_timed, args=(lambda: semat.matte(image, boxes=box), out, 0))
        call.start()
        call.join()
    _, start, end = out[0]
    duration = end - start
    assert duration > 0.15, f"the matte took {duration * 1e3:.0f} ms: too fast to tell a held GIL from the scheduler"
    pause = ticker.longest_pause(start, end)
    # Held for the call, the loop would stop for (nearly) all of it.
    assert pause < 0.5 * duration, (f"Python stood still for {pause * 1e3:.0f} ms of a {duration * 1e3:.0f} ms "
                                    "matte: is the GIL held during the work?")


def test_two_threads_matte_at_once_with_python_running(one_cv_thread):
    image, box = _scene()
    image2 = np.ascontiguousarray(image[:, ::-1])  # a second, different image
    box2 = [image.shape[1] - box[2], box[1], image.shape[1] - box[0], box[3]]
    alone = [semat.matte(image, boxes=box).alpha, semat.matte(image2, boxes=box2).alpha]
    out = [None, None]
    with Ticker() as ticker:
        calls = [threading.Thread(target=_timed, args=(lambda: semat.matte(image, boxes=box), out, 0)),
                 threading.Thread(target=_timed, args=(lambda: semat.matte(image2, boxes=box2), out, 1))]
        for c in calls:
            c.start()
        for c in calls:
            c.join()
    start = min(o[1] for o in out)
    end = max(o[2] for o in out)
    shortest = min(o[2] - o[1] for o in out)
    # Each call holding the GIL would stop the loop for its whole duration, one after the other.
    pause = ticker.longest_pause(start, end)
    assert pause < 0.5 * shortest, (f"Python stood still for {pause * 1e3:.0f} ms while two mattes of "
                                    f">= {shortest * 1e3:.0f} ms ran: is the GIL held during the work?")
    # The calls overlapped (the second started before the first ended) and were not disturbed by
    # each other: the same alphas as one at a time.
    assert max(o[1] for o in out) < min(o[2] for o in out)
    for (m, _, _), a in zip(out, alone):
        np.testing.assert_array_equal(m.alpha, a)
