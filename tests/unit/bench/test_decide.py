"""The deterministic witness of bench/decide.py: Python calls counted, in every thread."""

import sys
import threading

from bench.decide import python_calls


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
