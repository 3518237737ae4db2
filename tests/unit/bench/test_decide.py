"""bench/decide.py's counters: Python calls in every thread, and a process tree's CPU."""

import os
import subprocess
import sys
import threading

from bench.decide import python_calls, tree_cpu_seconds


def leaf() -> int:
    return 1


def calls_of(leaves: int) -> int:
    return python_calls(lambda: [leaf() for _ in range(leaves)])


def calls_with_a_thread(leaves_in_it: int) -> int:
    def work() -> None:
        helper = threading.Thread(target=lambda: [leaf() for _ in range(leaves_in_it)])
        helper.start()
        helper.join()

    return python_calls(work)


def test_each_python_call_counts_once() -> None:
    # given the same work with 0 and with 100 calls of a function
    # then the counts differ by exactly those 100 calls
    assert calls_of(100) - calls_of(0) == 100


def test_calls_in_a_thread_started_during_the_work_count_too() -> None:
    # given work that starts a thread calling a function 500 times, and the same with none
    difference = calls_with_a_thread(500) - calls_with_a_thread(0)
    # then those 500 calls are in the count; starting and joining a thread takes a few calls
    # more or fewer as the two threads happen to interleave (4 in 500 runs on loaded cores)
    assert abs(difference - 500) <= 20, difference


def test_counting_stops_with_the_work() -> None:
    python_calls(lambda: None)
    assert sys.getprofile() is None
    assert threading.getprofile() is None


BUSY_CHILD = (
    "import time\n"
    "started = time.process_time()\n"
    "while time.process_time() - started < 0.3: pass\n"
    "print('busy', flush=True)\n"
    "time.sleep(30)\n"
)


def test_a_child_started_from_another_thread_counts_in_the_tree_and_after_it_ends() -> None:
    # given a child started from a thread other than the main one, which then ends
    before = tree_cpu_seconds(os.getpid())
    children: list[subprocess.Popen[str]] = []
    starter = threading.Thread(
        target=lambda: children.append(
            subprocess.Popen([sys.executable, "-c", BUSY_CHILD], stdout=subprocess.PIPE, text=True)
        )
    )
    starter.start()
    starter.join()
    child = children[0]
    try:
        assert child.stdout is not None and child.stdout.readline() == "busy\n"
        # then its CPU is in the tree while it lives
        assert tree_cpu_seconds(os.getpid()) - before >= 0.3
    finally:
        child.kill()
        child.wait()
    # and once it has been waited for
    assert tree_cpu_seconds(os.getpid()) - before >= 0.3
