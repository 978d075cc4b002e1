"""Free ROS domains on this host, for stacks and test runs that must not hear each other.

A DDS participant in domain d binds UDP ports from the RTPS well-known range of that domain (port base 7400,
domain gain 250: DDSI-RTPS 2.5, section 9.6.1.1). A domain none of whose ports is bound has no participant on
this host. Our own processes also lock a file per domain they take, so two of them never pick the same one
between choosing it and their nodes binding its ports.

Fast DDS's shared-memory transport guards each port with a named semaphore (/dev/shm/sem.fastdds_port<N>_mutex).
A process killed while holding one leaves it locked, and every later participant that uses that port in that
domain blocks for good (a node that never starts). A domain with such a semaphore locked is not taken either.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import random
import re
import tempfile
from pathlib import Path

PORT_BASE, DOMAIN_GAIN = 7400, 250
HIGHEST_DOMAIN = 100  # domain 100's ports end at 32649, below Linux's ephemeral ports (from 32768)
_held: dict[int, int] = {}  # domain -> file descriptor of its lock, held until this process exits


def bound_udp_ports() -> set[int]:
    """Local UDP ports bound on this host (IPv4 and IPv6), from /proc/net."""
    ports = set()
    for table in (Path("/proc/net/udp"), Path("/proc/net/udp6")):
        if table.exists():
            for line in table.read_text().splitlines()[1:]:
                ports.add(int(line.split()[1].rsplit(":", 1)[1], 16))
    return ports


def locked_shared_memory_ports(shm: Path = Path("/dev/shm")) -> set[int]:
    """Ports whose Fast DDS shared-memory semaphore is locked (held now, or left locked by a killed process)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.sem_open.restype, libc.sem_open.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    libc.sem_getvalue.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    libc.sem_close.argtypes = [ctypes.c_void_p]
    ports = set()
    for entry in shm.glob("sem.fast*_port*_mutex") if shm.is_dir() else ():
        match = re.fullmatch(r"sem\.(fastdds|fastrtps)_port(\d+)_mutex", entry.name)
        handle = libc.sem_open(f"/{entry.name[4:]}".encode(), 0) if match else None
        if handle:
            value = ctypes.c_int(1)
            libc.sem_getvalue(handle, ctypes.byref(value))
            libc.sem_close(handle)
            if value.value <= 0:
                ports.add(int(match.group(2)))
    return ports


def domain_in_use(domain: int, bound: set[int]) -> bool:
    """Whether any port of `domain`'s RTPS range is among `bound`."""
    first = PORT_BASE + DOMAIN_GAIN * domain
    return any(first <= port < first + DOMAIN_GAIN for port in bound)


def claim_ros_domains(count: int, avoid: tuple[int, ...] = ()) -> list[int]:
    """`count` ROS domains (1..100) without a participant (or a stale shared-memory lock) on this host and not
    claimed by another of our processes, held by this process until it exits; `avoid` lists domains not to take
    (e.g. the current one)."""
    bound = bound_udp_ports() | locked_shared_memory_ports()
    candidates = [d for d in range(1, HIGHEST_DOMAIN + 1) if d not in avoid and d not in _held]
    random.Random(os.getpid()).shuffle(candidates)
    claimed = []
    for domain in candidates:
        if len(claimed) == count:
            break
        if domain_in_use(domain, bound):
            continue
        fd = os.open(Path(tempfile.gettempdir()) / f"sim2real-ros-domain-{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held[domain] = fd
        claimed.append(domain)
    if len(claimed) < count:
        raise RuntimeError(f"only {len(claimed)} of {count} ROS domains are free on this host "
                           f"(domains 1-{HIGHEST_DOMAIN}, ports {PORT_BASE}+{DOMAIN_GAIN}*domain)")
    return claimed


def release_ros_domains(domains: list[int]) -> None:
    """Give back domains taken with `claim_ros_domains`."""
    for domain in domains:
        os.close(_held.pop(domain))
