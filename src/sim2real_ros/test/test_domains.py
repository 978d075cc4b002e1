"""Free ROS domains: a domain with a participant's port bound, a stale Fast DDS shared-memory lock, or held by another
of our processes, is not taken."""
import ctypes
import os
import socket
import subprocess
import sys

import pytest

from sim2real_ros.domains import DOMAIN_GAIN, HIGHEST_DOMAIN, PORT_BASE, claim_ros_domains, release_ros_domains


def test_a_domain_whose_ports_are_bound_is_not_claimed():
    domain = claim_ros_domains(1)[0]
    release_ros_domains([domain])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as participant:  # a stranger's discovery port there
        participant.bind(("127.0.0.1", PORT_BASE + DOMAIN_GAIN * domain + 10))
        others = claim_ros_domains(3)
    assert domain not in others and len(set(others)) == 3
    release_ros_domains(others)


def test_a_domain_held_by_another_process_is_not_claimed():
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from sim2real_ros.domains import claim_ros_domains;"
                               "print(claim_ros_domains(1)[0], flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        held = int(holder.stdout.readline())
        with pytest.raises(RuntimeError, match="only 0 of 1 ROS domains are free"):
            claim_ros_domains(1, avoid=tuple(d for d in range(1, HIGHEST_DOMAIN + 1) if d != held))
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert claim_ros_domains(1, avoid=tuple(d for d in range(1, HIGHEST_DOMAIN + 1) if d != held)) == [held]
    release_ros_domains([held])


def test_a_domain_with_a_locked_shared_memory_port_is_not_claimed():
    domain = claim_ros_domains(1)[0]
    release_ros_domains([domain])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.sem_open.restype = ctypes.c_void_p
    libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
    # the last port of the domain's range (participant 119's): locked, as a holder killed mid-write leaves it
    name = f"/fastdds_port{PORT_BASE + DOMAIN_GAIN * domain + DOMAIN_GAIN - 1}_mutex".encode()
    handle = libc.sem_open(name, os.O_CREAT | os.O_EXCL, 0o600, 0)
    assert handle, os.strerror(ctypes.get_errno())
    try:
        others = claim_ros_domains(3)
        assert domain not in others
        release_ros_domains(others)
    finally:
        libc.sem_unlink(name)
