"""Does this grpcio survive what a Ray head's client proxy does for every client? It forks, with
a preexec_fn, while its own gRPC channels are busy. grpcio 1.80 to at least 1.85.3 crash such a
child now and then before its exec (SIGABRT, "epoll_wait error: Bad file descriptor",
grpc/grpc#43055): CI saw it twice as "Starting Ray client server failed" or
psutil.ZombieProcess in test_ray_cluster, which is why the ray extra pins grpcio below 1.80
(tests/test_project.py checks the installed version against that pin).

Measured here (AMD EPYC, 2 cores): 1.85.3 lost 46 of 300 children under load and about 1 in 100
quiet; 1.78.2 none of thousands. The probe runs in a child Python (no other gRPC state), forks
until --forks or --seconds runs out, and is killed with its process group at the deadline, so
it never outlives the benchmark on a busy machine.

    python benchmarks/grpc_fork.py [--forks 1000] [--seconds 120]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time

PROBE = """
import os, subprocess, sys, threading, time
from concurrent import futures
import grpc

forks, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])

class Echo(grpc.GenericRpcHandler):
    def service(self, details):
        return grpc.unary_unary_rpc_method_handler(lambda request, context: request)

server = grpc.server(futures.ThreadPoolExecutor(8))
server.add_generic_rpc_handlers((Echo(),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
call = grpc.insecure_channel(f"127.0.0.1:{port}").unary_unary("/echo/Echo")
done = threading.Event()

def busy():
    while not done.is_set():
        call(b"ping")

for _ in range(4):
    threading.Thread(target=busy, daemon=True).start()
made = dead = 0
while made < forks and time.monotonic() < deadline:
    child = subprocess.Popen(["/bin/true"], preexec_fn=lambda: None, stderr=subprocess.DEVNULL)
    made += 1
    dead += child.wait() != 0
done.set()
print(grpc.__version__, made, dead, flush=True)
os._exit(0)  # no interpreter shutdown beside gRPC's threads: it can hang there
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forks", type=int, default=1000, help="children to fork at most")
    parser.add_argument("--seconds", type=float, default=120, help="stop forking after this")
    args = parser.parse_args()

    print(f"# grpc fork probe | {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} | Python {platform.python_version()}")
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(args.forks), str(args.seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    t0 = time.perf_counter()
    try:
        out, err = probe.communicate(timeout=args.seconds + 30)
    except subprocess.TimeoutExpired:
        os.killpg(probe.pid, signal.SIGKILL)  # the probe and any child it left
        probe.wait()
        print(f"the probe did not finish within {args.seconds + 30:.0f} s; killed")
        return 1
    if probe.returncode != 0:
        print(err[-2000:])
        return 1
    version, made, dead = out.split()
    print(f"grpcio {version}: {dead} of {made} children died before their exec "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0 if dead == "0" else 1


if __name__ == "__main__":
    sys.exit(main())
