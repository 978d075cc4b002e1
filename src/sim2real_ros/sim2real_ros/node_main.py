"""One `main()` for every node: init, spin, and a clean exit 0 on Ctrl-C, SIGTERM or SIGHUP.

rclpy's own signal handler shuts the context down before any node code runs, so a commander could not
publish its final zero torque. Here the executor spins in a thread of its own, and the main thread, which
Python's signal handlers run in, only waits: a stop signal sets a flag and wakes the executor through a
guard condition, the spin loop ends at once, and the main thread calls the node's `stop()` (if it has one)
while the context is still up, then `close()`, then shuts the context down.
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def run_node(factory: Callable[[], Node], args: list[str] | None = None, threads: int = 1) -> int:
    """Create the node with `factory`, spin it until a stop signal or shutdown, and return the exit code.

    A configuration error raised while constructing the node (ValueError, or a parameter outside its
    descriptor's range) is printed and gives exit 2.
    On SIGINT, SIGTERM or SIGHUP the node's `stop()` runs first (a commander publishes zero torque there),
    then its `close()`. A callback that fails because the context went down under it is part of shutdown.
    """
    rclpy.init(args=sys.argv if args is None else args, signal_handler_options=SignalHandlerOptions.NO)
    stopping = threading.Event()
    wake = None

    def on_signal(*_) -> None:
        stopping.set()
        if wake is not None:
            wake.trigger()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    node = None
    failure: list[BaseException] = []
    try:
        try:
            node = factory()
        except (ValueError, ParameterException) as exc:  # e.g. a parameter outside its described range
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 2
        wake = node.create_guard_condition(lambda: None)
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)

        def spin() -> None:
            try:
                while rclpy.ok() and not stopping.is_set():
                    executor.spin_once()
            except (KeyboardInterrupt, ExternalShutdownException):
                pass
            except Exception as exc:  # re-raised in the main thread unless the shutdown caused it
                if rclpy.ok() and not stopping.is_set():
                    failure.append(exc)

        spinner = threading.Thread(target=spin, name="executor")
        spinner.start()
        while spinner.is_alive():
            spinner.join(timeout=0.5)  # interruptible: the signal handlers run here
        if failure:
            raise failure[0]
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            for hook in ("stop", "close"):
                method = getattr(node, hook, None)
                if callable(method) and (hook == "close" or rclpy.ok()):
                    method()
            node.destroy_node()
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
