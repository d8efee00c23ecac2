"""A private nats-server with JetStream for the relay's measurement
scripts (measure-relay-drain.py, measure-relay-lag.py): its own port and
store under the script's temporary directory, never the shared one."""

import os
import subprocess
from ports import free_port



def start_nats(directory):
    """nats-server -js on a free port, its store in `directory`/js: the
    process (terminate and wait for it when done) and its port."""
    port = free_port()
    process = subprocess.Popen(
        ["nats-server", "-js", "-p", str(port), "-sd", os.path.join(directory, "js"),
         "-a", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return process, port
