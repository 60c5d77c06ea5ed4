"""The README's cluster command against a real Ray cluster: a head and a second node joined to it
(--num-cpus 1 each, loopback addresses, token authentication on, a private --temp-dir), smoke
03 through the runner with RAY_ADDRESS=ray://127.0.0.1:PORT, compared with the local
executor; and the one-line refusals before any notebook starts. Ray and slow: a few minutes on
2 cores. The cluster is stopped by the process ids started here, never `ray stop` (which ends
every Ray process of the user)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers.base import ROOT

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.xdist_group("smoke")]
pytest.importorskip("ray")
RAY = Path(sys.executable).with_name("ray")  # the CLI of the Ray this Python imports


def free_ports(n: int) -> list[int]:
    """n ports free on 127.0.0.1 right now (bound together, so distinct)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def clean_env(**extra: str) -> dict:
    """This process's environment without any Ray address or auth setting, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    return env | extra


def wait_for(ok, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not ok():
        if time.time() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout} s")
        time.sleep(0.5)


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def stop(procs: list[subprocess.Popen], temp: Path) -> None:
    """SIGTERM each `ray start --block` we started (it stops its node's processes), then SIGKILL
    any process still naming our private temp dir: ours only, by pid."""
    for proc in reversed(procs):
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(temp).encode() in cmdline and int(pid_dir.name) != os.getpid():
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="module")
def cluster():
    """A two-node Ray cluster on loopback ports with token authentication; its address and the
    client's environment (RAY_AUTH_MODE=token, the token in a file via RAY_AUTH_TOKEN_PATH)."""
    temp = Path(tempfile.mkdtemp(prefix="ray15-", dir="/tmp"))  # short: Ray's socket paths
    token = temp / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    # the head starts a Ray client server per connection; on 2 busy cores that can take longer
    # than the proxy's default 30 s wait ("Starting Ray client server failed")
    env["RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S"] = "180"
    gcs, client, agent_head, agent_node = free_ports(4)
    node = ["--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1"]
    node += ["--temp-dir", str(temp), "--disable-usage-stats"]
    procs: list[subprocess.Popen] = []

    def start(args: list[str], log: str) -> Path:
        path = temp / log
        with open(path, "w") as out:
            cmd = [str(RAY), "start", *node, *args]
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
        return path

    try:
        head = ["--head", "--port", str(gcs), "--ray-client-server-port", str(client)]
        head += ["--include-dashboard=false", "--dashboard-agent-listen-port", str(agent_head)]
        start(head, "head.log")
        wait_for(lambda: answers(client), "the head's client server")
        log = start(
            [f"--address=127.0.0.1:{gcs}", "--dashboard-agent-listen-port", str(agent_node)],
            "node.log",
        )
        wait_for(lambda: "Ray runtime started" in log.read_text(), "the second node")
        yield {"address": f"ray://127.0.0.1:{client}", "gcs": gcs, "env": env, "temp": temp}
    finally:
        stop(procs, temp)
        shutil.rmtree(temp, ignore_errors=True)


def cli(*args: str, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "helpers", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, text=True, capture_output=True, timeout=timeout)


def smoke(out: Path, *extra: str, env: dict) -> subprocess.CompletedProcess:
    # 03 only: its trials cross the cluster as 04's would (04 on Ray: test_augment_transfer),
    # and the run stays within a minute or two on 2 cores
    args = ["run", "--profile", "smoke", "--dataset", "synthetic", "--only", "03"]
    return cli(*args, "--out", str(out), "--no-report", *extra, env=env)


def trial_records(run_dir: Path) -> dict[str, dict]:
    return {
        p.name: json.loads(p.read_text()) for p in (run_dir / "results" / "trials").glob("*.json")
    }


def test_smoke_03_on_the_cluster_writes_the_local_executors_trials(cluster, smoke_run, tmp_path):
    """03 of the smoke profile on the cluster, against 03 of the shared smoke run (local
    executor, another data folder): the same trials, ids and settings."""
    data = {"CINIC10_DATA": str(tmp_path / "data")}  # one cache, shared by workers and kernels
    env = cluster["env"] | data | {"RAY_ADDRESS": cluster["address"]}
    t0 = time.perf_counter()
    remote = smoke(tmp_path / "ray", "-p", "executor=ray", env=env)
    logs = "".join(  # the head's proxy and the client servers it started, if it comes to that
        f"\n--- {p.name}:\n{p.read_text(errors='replace')[-1500:]}"
        for p in sorted(cluster["temp"].glob("session_*/logs/ray_client_server*"))
    )
    assert remote.returncode == 0, remote.stdout[-2000:] + remote.stderr[-3000:] + logs
    print(f"smoke 03 on the cluster: {time.perf_counter() - t0:.0f} s")
    check = next(line for line in remote.stdout.splitlines() if line.startswith("ray cluster:"))
    assert "2 node(s) alive" in check, check  # the joined node is part of the cluster
    theirs = trial_records(tmp_path / "ray")
    ours = {n: r for n, r in trial_records(smoke_run[0]).items() if r["kind"] == "resnet"}  # 03's
    assert sorted(ours) == sorted(theirs)
    assert len(ours) == 4, sorted(ours)  # 03's smoke grids: 2 + 2 trials, one seed
    for name, rec in theirs.items():
        assert rec["executor"] == "ray" and ours[name]["executor"] == "local"
        for key in ("trial_id", "kind", "config", "settings", "function"):
            assert rec[key] == ours[name][key], (name, key)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("auth off", "requires Ray's token authentication and RAY_AUTH_MODE is 'disabled'"),
        ("wrong token", "refused this machine's token (from RAY_AUTH_TOKEN)"),
        ("no token", "RAY_AUTH_MODE=token but no token here"),
        ("gcs port", "is not a ray client server"),
        ("closed port", "nothing answers at 127.0.0.1:"),
    ],
)
def test_a_bad_connection_is_one_line_before_any_notebook(cluster, tmp_path, case, expected):
    address = cluster["address"]
    env = cluster["env"] | {"RAY_ADDRESS": address}
    if case == "auth off":
        env = clean_env(RAY_ADDRESS=address)
    elif case == "wrong token":
        env |= {"RAY_AUTH_TOKEN": secrets.token_hex(32)}  # outranks the (right) token file
    elif case == "no token":
        env |= {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}
    elif case == "gcs port":
        env |= {"RAY_ADDRESS": f"ray://127.0.0.1:{cluster['gcs']}"}
    elif case == "closed port":
        env |= {"RAY_ADDRESS": f"ray://127.0.0.1:{free_ports(1)[0]}"}
    t0 = time.perf_counter()
    proc = cli("run", "--profile", "smoke", "--only", "03", "-p", "executor=ray",
               "--out", str(tmp_path), "--no-report", env=env, timeout=120)  # fmt: skip
    seconds = time.perf_counter() - t0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(errors) == 1 and expected in errors[0] and env["RAY_ADDRESS"] in errors[0]
    assert (
        "Traceback" not in proc.stderr
        and not (tmp_path / "executed" / "03_hyperparams.ipynb").exists()
    )
    assert seconds < 30, f"{case}: {seconds:.0f} s"  # Ray client alone: about 50 s


def test_a_version_mismatch_is_named(cluster):
    """As if this machine had another Ray than the cluster's (Ray client refuses that)."""
    code = (
        "import ray, sys\nray.__version__ = '2.59.0'\n"
        "from helpers.run.cluster import check_cluster\nfrom helpers.base import StudyError\n"
        "try:\n    check_cluster(sys.argv[1])\nexcept StudyError as err:\n    print(err)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, cluster["address"]],
        env=cluster["env"], cwd=ROOT, text=True, capture_output=True, timeout=120,
    )  # fmt: skip
    import ray

    assert f"the cluster runs Ray {ray.__version__}" in proc.stdout, proc.stdout + proc.stderr
    assert "this machine Ray 2.59.0" in proc.stdout and "pip install" in proc.stdout
