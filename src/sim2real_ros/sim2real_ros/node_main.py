"""One `main()` for every node: init, spin, and a clean exit 0 on Ctrl-C, SIGTERM or SIGHUP.

rclpy's own signal handler shuts the context down before any node code runs, so a commander could not
publish its final zero torque. Here the executor spins in a thread of its own, and the main thread, which
Python's signal handlers run in, only waits: a stop signal sets a flag and wakes the executor, the spin loop
ends at once, and the main thread calls the node's `stop()` (if it has one)
while the context is still up, then `close()`, then shuts the context down.

Single-threaded nodes spin on rclpy's EventsExecutor by default: its C++ event queue costs a fraction of the
Python executor's per message, which is what lets a node read franka_ros2's 1 kHz joint-state stream on a
loaded machine. It does not take raw subscriptions (the transition logger's), nor several threads.
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
# The EventsExecutor's spin_once without a timeout returns at once: a bounded wait (a stop signal wakes it).
SPIN_TIMEOUT = 1.0  # [s]


def run_node(factory: Callable[[], Node], args: list[str] | None = None, threads: int = 1,
             events: bool = True) -> int:
    """Create the node with `factory`, spin it until a stop signal or shutdown, and return the exit code.

    A configuration error raised while constructing the node (ValueError, or a parameter outside its
    descriptor's range) is printed and gives exit 2. `threads` > 1 spins a MultiThreadedExecutor, `events`
    (with one thread) the EventsExecutor, otherwise a SingleThreadedExecutor.
    On SIGINT, SIGTERM or SIGHUP the node's `stop()` runs first (a commander publishes zero torque there),
    then its `close()`. A callback that fails because the context went down under it is part of shutdown.
    """
    rclpy.init(args=sys.argv if args is None else args, signal_handler_options=SignalHandlerOptions.NO)
    stopping = threading.Event()
    executor: Executor | None = None

    def on_signal(*_) -> None:
        stopping.set()
        if executor is not None:
            executor.wake()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    node = None
    failure: list[BaseException] = []
    try:
        try:
            node = factory()
        except (ValueError, ParameterException) as exc:  # e.g. a parameter outside its described range
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 2
        if threads > 1:
            executor = MultiThreadedExecutor(num_threads=threads)
        else:
            executor = EventsExecutor() if events else SingleThreadedExecutor()
        executor.add_node(node)

        def spin() -> None:
            try:
                while rclpy.ok() and not stopping.is_set():
                    executor.spin_once(timeout_sec=SPIN_TIMEOUT)
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
