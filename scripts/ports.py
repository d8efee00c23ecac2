"""A free port on 127.0.0.1 for a server a script starts, chosen below the
kernel's ephemeral range.

A port found by binding port 0 is in that range, from which the kernel
also gives outgoing connections their local port: between the pick and
the server's bind, a connection (to PostgreSQL, to the last server) may
take it, and the server fails with "Address already in use" (seen in
CI's typed-clients step, port 52137). Below the range only a listener
can hold a port.

Importable (`from ports import free_port`, the scripts' directory is on
their path), or run: `python3 scripts/ports.py` prints one.
"""

import random
import socket


def ephemeral_low():
    """The first port of the kernel's ephemeral range (32768 when unknown)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port on 127.0.0.1 nothing listens on, below the ephemeral range."""
    low = ephemeral_low()
    for _ in range(200):
        port = random.randrange(min(10000, low - 1000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    print(free_port())
