"""Service requests that survive a lost response.

DDS discovers each reader and writer on its own. A server that has matched a new client's request writer but
not yet its response reader answers into the void, so the first request of a fresh client can go unanswered on
a loaded machine, and `wait_for_service` cannot tell (it sees only the client's side of the match). Requests
whose repetition is harmless (resets, recoveries, parameter reads and writes) are therefore sent again until
one is answered.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from rclpy.task import Future

RESEND_AFTER = 5.0  # [s] how long one request may stay unanswered before it is sent again


def answered(send: Callable[[], Future], spin_once: Callable[[], None], timeout: float, what: str,
             resend_after: float = RESEND_AFTER):
    """The result of the first answered request, sending it again every `resend_after` s until `timeout` s.

    Args:
        send: sends the request and returns its future (e.g. ``lambda: client.call_async(request)``); only for
            requests that may be served more than once.
        spin_once: one round of the caller's executor; may raise to abort (e.g. when a watched process died).
        timeout: seconds until giving up with TimeoutError.
        what: the request, for the error message.
    """
    deadline = time.monotonic() + timeout
    sent = 0
    while time.monotonic() < deadline:
        future = send()
        sent += 1
        resend_at = min(deadline, time.monotonic() + resend_after)
        while not future.done() and time.monotonic() < resend_at:
            spin_once()
        if future.done():
            return future.result()
    raise TimeoutError(f"{what}: no answer in {timeout:g} s ({sent} request{'s' * (sent > 1)} sent)")
