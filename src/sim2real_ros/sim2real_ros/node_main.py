"""One `main()` for every node: init, spin, and a clean exit 0 on Ctrl-C, SIGTERM or SIGHUP.

rclpy's own signal handler shuts the context down before any node code runs, so a commander could not
publish its final zero torque. Here the signals only set a flag; the spin loop then calls the node's
`stop()` (if it has one) while the context is still up, then `close()`, then shuts the context down.
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

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Longest wait of the spin loop [s]: a signal is acted on within this time even when no callback is due.
SIGNAL_LATENCY = 0.02


def run_node(factory: Callable[[], Node], args: list[str] | None = None, threads: int = 1) -> int:
    """Create the node with `factory`, spin it until a stop signal or shutdown, and return the exit code.

    A configuration error raised while constructing the node (ValueError, or a parameter outside its
    descriptor's range) is printed and gives exit 2.
    On SIGINT, SIGTERM or SIGHUP the node's `stop()` runs first (a commander publishes zero torque there),
    then its `close()`. A callback that fails because the context went down under it is part of shutdown.
    """
    rclpy.init(args=sys.argv if args is None else args, signal_handler_options=SignalHandlerOptions.NO)
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in STOP_SIGNALS}
    node = None
    try:
        try:
            node = factory()
        except (ValueError, ParameterException) as exc:  # e.g. a parameter outside its described range
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 2
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and not stopping.is_set():
            executor.spin_once(timeout_sec=SIGNAL_LATENCY)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok() and not stopping.is_set():  # a real failure; otherwise cut off by the shutdown
            raise
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
