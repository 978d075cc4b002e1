"""One `main()` for every node: init, spin, and a clean exit 0 on Ctrl-C or SIGTERM."""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node


def run_node(factory: Callable[[], Node], args: list[str] | None = None, threads: int = 1) -> int:
    """Create the node with `factory`, spin it until shutdown, and return the process exit code.

    A configuration error raised while constructing the node (ValueError) is printed and gives exit 2.
    A callback that fails because a signal shut the context down under it (publishing to a closed context)
    is part of shutdown, not an error: the node still closes and exits 0.
    """
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    try:
        try:
            node = factory()
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 2
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else None
        rclpy.spin(node, executor=executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():  # a real failure; otherwise a callback was cut off by the signal's shutdown
            raise
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
