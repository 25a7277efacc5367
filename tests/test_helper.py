"""The helper thread that scores a question's words while the encoder runs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.helper import HelperThread


def test_each_caller_gets_the_result_of_its_own_job():
    helper = HelperThread("test-helper")
    with ThreadPoolExecutor(4) as callers:
        results = list(
            callers.map(lambda n: helper.submit(lambda: (n, threading.current_thread().name)).result(), range(40))
        )
    assert results == [(n, "test-helper") for n in range(40)]


def test_an_error_in_the_job_is_raised_in_the_caller_and_the_thread_goes_on():
    helper = HelperThread("test-helper")
    with pytest.raises(ZeroDivisionError):
        helper.submit(lambda: 1 / 0).result()
    assert helper.submit(lambda: "still here").result() == "still here"
