"""Real local services for the tests: a Ray head, an MLflow tracking server and an S3
server (SeaweedFS), each on free ports of 127.0.0.1, started as its own process
group and stopped by pid so that nothing outlives the test session."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (held open together so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting:\n{_tail(log)}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s:\n{_tail(log)}")


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


def http_answers(url: str) -> bool:
    """The server answers HTTP at ``url`` (a 401 of a token-auth Ray dashboard counts)."""
    try:
        return http_ok(url)
    except urllib.error.HTTPError as err:
        return err.code == 401


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Service:
    """A process group started by the tests; ``stop()`` ends every process in it."""

    name: str
    proc: subprocess.Popen
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    stop_signal: signal.Signals = signal.SIGTERM
    """Sent to the leader first, so that it shuts its children down itself."""
    cmd: list[str] = field(default_factory=list)
    workdir: Path | None = None

    @classmethod
    def start(
        cls, name: str, cmd: list[str], workdir: Path, env: Mapping[str, str] | None = None, stop_signal: signal.Signals = signal.SIGTERM
    ) -> Service:
        log = workdir / f"{name}.log"
        full_env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", **(env or {})}
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, cwd=workdir, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return cls(name, proc, log, dict(env or {}), stop_signal, list(cmd), workdir)

    def start_again(self) -> None:
        """Start the same command again (same ports, same data) after ``stop()`` or a kill."""
        self.proc = Service.start(self.name, self.cmd, self.workdir, self.env, self.stop_signal).proc

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a lost machine or an OOM kill does."""
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        """Stop the leader gracefully, then end whatever is left of its process group."""
        self.proc.send_signal(self.stop_signal)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        self.kill()  # what ignored the signal or outlived the leader


@dataclass
class S3Server:
    service: Service
    endpoint: str
    bucket: str
    env: dict[str, str]

    def ready(self) -> bool:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )
        client.head_bucket(Bucket=self.bucket)
        return True

    def restart(self, down_seconds: float) -> None:
        """Stop the server, leave it down ``down_seconds``, start it again on the same ports and data."""
        self.service.stop()
        time.sleep(down_seconds)
        self.service.start_again()
        wait_until(self.ready, 60, "S3 server (weed mini) after a restart", self.service.proc, self.service.log)


def start_s3(workdir: Path, bucket: str = "handdiff-test") -> S3Server:
    """SeaweedFS ``weed mini`` with its S3 gateway on a free port and ``bucket`` created."""
    data = workdir / "s3-data"
    data.mkdir(parents=True, exist_ok=True)
    (s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc, admin, admin_grpc, webdav, metrics) = free_ports(12)
    env = {
        "AWS_ACCESS_KEY_ID": "handdiff-test-key",
        "AWS_SECRET_ACCESS_KEY": "handdiff-test-secret",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3}",
    }
    cmd = [
        str(BIN / "weed"),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin_grpc}",
        "-admin.ui=false",
        f"-webdav.port={webdav}",
        "-webdav=false",
        f"-metricsPort={metrics}",
        f"-bucket={bucket}",
    ]
    service = Service.start("s3", cmd, workdir, env={k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    server = S3Server(service, env["AWS_ENDPOINT_URL"], bucket, env)
    wait_or_stop(service, server.ready, "S3 server (weed mini)", timeout=60)
    return server


@dataclass
class MlflowServer:
    service: Service
    uri: str


def start_mlflow(workdir: Path) -> MlflowServer:
    """``mlflow server`` with a sqlite store and served artifacts on a free port."""
    root = workdir / "mlflow-server"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    service = Service.start("mlflow", cmd, workdir)
    uri = f"http://127.0.0.1:{port}"
    wait_or_stop(service, lambda: http_ok(f"{uri}/health"), "MLflow server")
    return MlflowServer(service, uri)


def wait_or_stop(service: Service, check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Wait until ``check()`` holds; stop ``service`` if it never does (or the wait is interrupted)."""
    try:
        wait_until(check, timeout, what, service.proc, service.log)
    except BaseException:
        service.stop()
        raise


# Worker ports come in blocks of 1,000 below Linux's ephemeral range (32768+, where free_ports
# and every outgoing connection take theirs); each node started from this process gets the next
# block, so that two nodes' workers never race for one port.
_WORKER_PORT_BLOCKS = itertools.cycle(range(10000, 32000, 1000))


def node_port_flags() -> list[str]:
    """``ray start`` flags putting a node's own servers on free ports and its workers on a port
    range no other node of this process uses (several nodes share this machine)."""
    node_manager, object_manager, metrics, agent_grpc, agent_http, runtime_env_agent = free_ports(6)
    low = next(_WORKER_PORT_BLOCKS)
    return [
        f"--min-worker-port={low}",
        f"--max-worker-port={low + 999}",
        f"--node-manager-port={node_manager}",
        f"--object-manager-port={object_manager}",
        f"--metrics-export-port={metrics}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--dashboard-agent-listen-port={agent_http}",
        f"--runtime-env-agent-port={runtime_env_agent}",
    ]


@dataclass
class RayHead:
    service: Service
    address: str
    dashboard_url: str
    env: dict[str, str]


def start_ray_head(workdir: Path, env: Mapping[str, str], num_cpus: int = 8) -> RayHead:
    """``ray start --head --block`` on free ports; ``env`` reaches every Ray worker.

    Token auth is disabled on this loopback-only test cluster unless ``env`` says
    ``RAY_AUTH_MODE=token`` (Ray 2.60 turns it on where ``~/.ray/auth_token`` exists),
    so that drivers and ``ray job submit`` need no token.
    """
    gcs, dashboard, client = free_ports(3)
    temp_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"hd-ray-{gcs}"
    # RAY_ADDRESS: Ray's own processes that look their cluster up without an address (Ray Train's
    # placement-group cleaner) would otherwise find every test cluster on this machine and give up
    env = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": f"127.0.0.1:{gcs}", **env}
    cmd = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        "--disable-usage-stats",
        "--node-ip-address=127.0.0.1",
        f"--port={gcs}",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        f"--temp-dir={temp_dir}",
        "--object-store-memory=1500000000",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--ray-client-server-port={client}",
        *node_port_flags(),
    ]
    # `ray start --block` shuts its processes down on SIGINT (SIGTERM leaves them for 20 s).
    service = Service.start("ray", cmd, workdir, env=env, stop_signal=signal.SIGINT)
    dashboard_url = f"http://127.0.0.1:{dashboard}"
    wait_or_stop(service, lambda: http_answers(f"{dashboard_url}/api/version"), "Ray head")
    return RayHead(service, f"127.0.0.1:{gcs}", dashboard_url, env)


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
