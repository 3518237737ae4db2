"""The deterministic witness of bench/decide.py: Python calls counted, in every thread."""

import threading

from bench.decide import python_calls


def leaf() -> int:
    return 1


def calls_of(leaves: int, in_a_thread: int = 0) -> int:
    def work() -> None:
        for _ in range(leaves):
            leaf()
        helper = threading.Thread(target=lambda: [leaf() for _ in range(in_a_thread)])
        helper.start()
        helper.join()

    return python_calls(work)


def test_each_python_call_counts_once() -> None:
    # given the same work with 0 and with 100 calls of a function
    # then the counts differ by exactly those 100 calls
    assert calls_of(100) - calls_of(0) == 100


def test_calls_in_a_thread_started_during_the_work_count_too() -> None:
    # given work that starts a thread calling a function 50 times
    # then those 50 calls are in the count
    assert calls_of(0, in_a_thread=50) - calls_of(0) == 50


def test_counting_stops_with_the_work() -> None:
    import sys

    python_calls(lambda: None)
    assert sys.getprofile() is None
    assert threading.getprofile() is None
