"""Check the Ray cluster at RAY_ADDRESS before any notebook: a wrong port, a missing token or a
version mismatch is one line in seconds, not Ray client's timeout inside a notebook after ~50 s."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

from helpers.base import StudyError

CLIENT_PORT = 10001  # Ray client server's default (`ray start --ray-client-server-port`)
GET_TOKEN = "`ray get-auth-token` on the head prints it"


def token_source() -> str | None:
    """Where Ray will read this process's token from, in Ray's own order; None if nowhere."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        path = Path(os.environ["RAY_AUTH_TOKEN_PATH"]).expanduser()
        return f"RAY_AUTH_TOKEN_PATH={path}" if path.is_file() else None
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


def _host_port(address: str) -> tuple[str, int]:
    """'ray://head:10001' or 'head:6379' -> (host, port); ray://head gets the client port."""
    rest = address.removeprefix("ray://").rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep:
        return rest, CLIENT_PORT
    if not port.isdigit():
        raise StudyError(f"RAY_ADDRESS={address}: the port {port!r} is not a number")
    return host.strip("[]"), int(port)


def _running_cluster(where: str) -> tuple[str, int]:
    """RAY_ADDRESS=auto: (host, GCS port) of this machine's Ray cluster, as ray.init finds it."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:
        raise StudyError(f"{where}: Ray is not installed (pip install -e '.[ray]')") from None
    try:
        return _host_port(canonicalize_bootstrap_address_or_die("auto"))
    except ConnectionError as err:
        several = "multiple" in str(err)
        raise StudyError(
            f"{where}: {'several Ray clusters run' if several else 'no Ray cluster runs'} on this "
            "machine; start one (`ray start --head`), give its address (RAY_ADDRESS=HOST:6379 or "
            "ray://HOST:10001), or unset RAY_ADDRESS and the run starts its own Ray") from None


def check_cluster(address: str | None = None, *, timeout: float = 5.0) -> str:
    """One line saying the cluster answers ('Ray 2.60.0, Python 3.11.7, 2 node(s) alive ...'),
    else a StudyError naming the address, the likely cause and the fix; each stage <= timeout s."""
    address = address or os.environ.get("RAY_ADDRESS", "")
    if address in ("", "local"):
        return "no remote cluster (RAY_ADDRESS unset or local: the run starts its own Ray)"
    where, client = f"Ray cluster at RAY_ADDRESS={address}", address.startswith("ray://")
    t0 = time.perf_counter()
    host, port = _running_cluster(where) if address == "auto" else _host_port(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        what = ("ray client server (`ray start --ray-client-server-port`, 10001 by default)"
                if client else "GCS (`ray start --port`, 6379 by default)")
        raise StudyError(f"{where}: nothing answers at {host}:{port} ({err.strerror or err}): a "
                         f"wrong host or port, or the head is not up; give the {what}") from None
    if not client:  # a GCS address: ray.init itself checks the rest
        return f"{host}:{port} answers ({time.perf_counter() - t0:.1f} s)"
    mode = os.environ.get("RAY_AUTH_MODE", "disabled").lower()
    if mode == "token" and token_source() is None:
        raise StudyError(f"{where}: RAY_AUTH_MODE=token but no token here (RAY_AUTH_TOKEN, "
                         f"RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token): copy the cluster's "
                         f"({GET_TOKEN})")
    _ping(where, host, port, mode, timeout)
    return _versions(where, address, t0)


def _ping(where: str, host: str, port: int, mode: str, timeout: float) -> None:
    """Ray client's own first call (ClusterInfo PING), with this process's auth, in seconds."""
    import grpc
    from ray._private.grpc_utils import init_grpc_channel  # adds the token when mode is token
    from ray.core.generated import ray_client_pb2 as pb
    from ray.core.generated import ray_client_pb2_grpc as pb_grpc

    channel = init_grpc_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        ping = pb.ClusterInfoRequest(type=pb.ClusterInfoType.PING)
        pb_grpc.RayletDriverStub(channel).ClusterInfo(ping, timeout=timeout)
    except grpc.FutureTimeoutError:
        raise StudyError(
            f"{where}: {host}:{port} accepts connections but speaks no gRPC within {timeout:.0f} s:"
            " a wrong port? give the ray client server's (10001 by default)") from None
    except grpc.RpcError as err:
        code = err.code()
        if code == grpc.StatusCode.UNAUTHENTICATED and mode != "token":
            cause = (f"the cluster requires Ray's token authentication and RAY_AUTH_MODE is "
                     f"{mode!r} here: set RAY_AUTH_MODE=token and give this machine the cluster's "
                     f"token (~/.ray/auth_token, RAY_AUTH_TOKEN_PATH=FILE or RAY_AUTH_TOKEN; "
                     f"{GET_TOKEN})")
        elif code == grpc.StatusCode.UNAUTHENTICATED:
            cause = (f"the cluster refused this machine's token (from {token_source()}): use the "
                     f"cluster's ({GET_TOKEN})")
        elif code == grpc.StatusCode.UNIMPLEMENTED:
            cause = ("that port is not a ray client server (the GCS's 6379?): give ray://HEAD:PORT "
                     "with the head's --ray-client-server-port (10001 by default)")
        else:
            cause = f"{code.name}: {err.details()} (a wrong port, or the head still starting?)"
        raise StudyError(f"{where}: {cause}") from None
    finally:
        channel.close()


def _versions(where: str, address: str, t0: float) -> str:
    """Connect once and compare versions: Ray client needs the same Ray and Python x.y."""
    import ray

    from helpers.experiments.raytasks import connect_retrying

    try:
        info = connect_retrying(lambda: ray.util.connect(
            address.removeprefix("ray://"), connection_retries=1, ignore_version=True))
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
    except Exception as err:  # whatever Ray raises here, the user gets one line
        raise StudyError(f"{where}: connecting failed: {type(err).__name__}: {err}") from None
    finally:
        if ray.util.client.ray.is_connected():
            ray.util.disconnect()
    here = (ray.__version__, ".".join(map(str, sys.version_info[:2])))
    there = (info["ray_version"], ".".join(info["python_version"].split(".")[:2]))
    if here != there and "RAY_IGNORE_VERSION_MISMATCH" not in os.environ:
        raise StudyError(
            f"{where}: version mismatch: the cluster runs Ray {there[0]} on Python {there[1]}, "
            f"this machine Ray {here[0]} on Python {here[1]}; install the cluster's "
            f"(pip install 'ray[default]=={there[0]}', Python {there[1]})")
    return (f"Ray {info['ray_version']}, Python {info['python_version']}, {nodes} node(s) alive "
            f"({time.perf_counter() - t0:.1f} s)")
