"""A node lost mid-job, on a simulated multi-node cluster on this machine: a head and two
worker nodes (``ray start --address ...``, one logical GPU each), the jobs submitted as they
are on a real cluster (their own driver process, ``ray.address=<head>``). One worker node is
SIGKILLed (raylet and workers at once, as a reclaimed spot instance goes) and a replacement
joins, as an autoscaler brings one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.services import RayHead, Service, node_port_flags, start_ray_head, wait_until
from handdiff import storage
from handdiff.config import to_yaml
from pipelines import train_hand
from pipelines.job import TrackingConfig
from tests import ray_train
from tests.faults.conservation import assert_each_input_once, hagrid_annotate, parts_written

pytestmark = [pytest.mark.slow, pytest.mark.services]
REPO = Path(__file__).resolve().parents[2]
WORKER_CPUS = 3


class MultiNodeCluster:
    """A head (2 CPUs, no GPU) and worker nodes (4 CPUs, 1 logical GPU each) on 127.0.0.1.

    A job's heaviest demand (a DDP worker: WORKER_CPUS) fits one to a worker node; the CPU over
    it is for Ray Data's tasks, so that a task the lost node's pipeline left running never keeps
    a restarted worker group from its node."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir, self.env = workdir, {**env, "RAY_AUTH_MODE": "disabled"}
        self.head: RayHead = start_ray_head(workdir, env=self.env, num_cpus=2)
        self.env["RAY_ADDRESS"] = self.head.address  # the worker nodes' processes look up this cluster, not the session's
        self.workers: list[Service] = []

    def add_worker(self) -> Service:
        """Start a worker node and wait until the cluster lists it alive. The node is known by a
        resource of its own name: a count of live nodes would still include a killed node for
        the ~30 s the head takes to notice that it is gone."""
        name = f"ray-worker-{len(self.workers)}"
        cmd = [
            str(Path(sys.executable).parent / "ray"),
            "start",
            f"--address={self.head.address}",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={WORKER_CPUS + 1}",
            "--num-gpus=1",
            f"--resources={json.dumps({name: 1})}",
            *node_port_flags(),
            "--object-store-memory=300000000",
        ]
        # `ray start --block` shuts its processes down on SIGINT (SIGTERM leaves them for 20 s)
        worker = Service.start(name, cmd, self.workdir, env=self.env, stop_signal=signal.SIGINT)
        self.workers.append(worker)
        wait_until(lambda: name in self.alive_node_names(), 120, f"Ray worker node {name}", worker.proc, worker.log)
        return worker

    def ray(self, *args: str) -> subprocess.CompletedProcess:
        """A ``ray`` CLI command against this cluster."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "ray"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **self.env},
        )

    def alive_node_names(self) -> set[str]:
        """The names (their own resource) of the worker nodes the head lists alive; none while it cannot say."""
        out = self.ray("list", "nodes", "--format=json", f"--address={self.head.dashboard_url}")
        nodes = json.loads(out.stdout or "[]") if out.returncode == 0 else []
        return {r for n in nodes if n["state"] == "ALIVE" for r in n.get("resources_total", {}) if r.startswith("ray-worker-")}

    def report(self) -> str:
        """What the cluster looks like, for a failure's message: nodes, usage per node, demands."""
        out = self.ray("status", "-v", f"--address={self.head.address}")
        return out.stdout + out.stderr

    def lose_a_node_then_replace_it(self) -> None:
        """SIGKILL the oldest live worker node, then start a new one (the module's tests share the cluster)."""
        next(w for w in self.workers if w.proc.poll() is None).kill()
        time.sleep(2)
        self.add_worker()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.head.service.stop()


@pytest.fixture
def cluster(tmp_path_factory, s3_server):
    """A fresh cluster per test: a node lost in one test must not be the state the next starts from."""
    cluster = MultiNodeCluster(tmp_path_factory.mktemp("multinode"), s3_server.env)
    try:
        cluster.add_worker()
        cluster.add_worker()
        yield cluster
    finally:
        cluster.stop()


def submit(cluster: MultiNodeCluster, module: str, cfg, workdir: Path) -> subprocess.Popen:
    """The job's own driver process on the head's cluster, as ``ray job submit`` starts one.
    ``--verbose``: the workers' and Ray Train's controller's lines reach the job's log, so that a
    failure below shows what the cluster did."""
    config_file = workdir / f"{cfg.job}.yaml"
    config_file.write_text(to_yaml(cfg))
    env = {**os.environ, **cluster.env, "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    with open(workdir / f"{cfg.job}.log", "w") as log:  # the child writes to its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", module, "--config", str(config_file), "--verbose", f"ray.address={cluster.head.address}"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def finish(job: subprocess.Popen, cluster: MultiNodeCluster, workdir: Path, name: str, timeout: float = 480) -> None:
    try:
        job.wait(timeout)
    except subprocess.TimeoutExpired:
        status = cluster.report()
        job.kill()
        job.wait(30)
        raise AssertionError(
            f"{name} still running {timeout:.0f}s after the node loss; `ray status -v`:\n{status}\n"
            f"the job's log:\n" + (workdir / f"{name}.log").read_text()[-5000:]
        ) from None
    assert job.returncode == 0, (workdir / f"{name}.log").read_text()[-5000:]


def wait_while_running(job: subprocess.Popen, check, what: str, workdir: Path, name: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert job.poll() is None, f"the job ended before {what}:\n" + (workdir / f"{name}.log").read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {what} in {timeout:.0f}s"
        time.sleep(0.3)


def test_annotate_loses_a_gpu_node_and_writes_every_id_once(cluster, demo_workdir, tmp_path):
    """The SAM actors (one logical GPU each) are spread over both worker nodes; one node dies
    mid-job: its actor and tasks are lost, Ray restarts the actor on the replacement and retries
    the tasks; the parts' names keep a retried batch from adding rows."""
    cpu_on_gpu_nodes = {"actors": 2, "batch_size": 2, "num_cpus": 1, "num_gpus": 1, "on_device": "cpu"}
    cfg = hagrid_annotate(
        demo_workdir,
        str(tmp_path / "annotated"),
        f"sqlite:///{tmp_path}/db.sqlite",
        "node-loss",
        masks={"resources": cpu_on_gpu_nodes},
        ray={"address": None},
    )
    job = submit(cluster, "pipelines.annotate", cfg, tmp_path)
    wait_while_running(job, lambda: parts_written(cfg) >= 2, "the second part", tmp_path, "annotate")
    at_loss = parts_written(cfg)
    cluster.lose_a_node_then_replace_it()
    finish(job, cluster, tmp_path, "annotate")
    assert parts_written(cfg) > at_loss
    assert_each_input_once(cfg)


def test_train_hand_loses_a_worker_node_and_resumes_from_the_committed_checkpoint(cluster, hand_crops, demo_workdir, tmp_path):
    """Two DDP workers, one per worker node (WORKER_CPUS each); one node dies after
    a checkpoint is committed: Ray Train restarts the worker group once the replacement joins,
    from that checkpoint, and the run finishes at its configured step in one MLflow run."""
    uri, steps = f"sqlite:///{tmp_path}/db.sqlite", 24
    cfg = train_hand.Config(
        tracking=TrackingConfig(run_name="node-loss", tracking_uri=uri),
        data={"path": hand_crops.output, "validation_rows": 2, "shuffle_buffer": 8, "tasks": {"num_cpus": 0.5, "concurrency": 1}},
        model={"base": f"{demo_workdir}/zoo/sd15"},
        train={"steps": steps, "batch_size": 4, "warmup_steps": 0, "mixed_precision": "no", "gradient_checkpointing": False, "lr": 1e-4},
        scaling={"workers": 2, "cpus_per_worker": WORKER_CPUS},
        checkpoint={"storage_path": str(tmp_path / "runs"), "every_steps": 2, "num_to_keep": 2, "max_failures": 3},
        logging={"every_steps": 1, "sample_every_steps": 1000, "sample_inference_steps": 2},
        registered_model=None,
    )
    fs, root = storage.filesystem(str(tmp_path / "runs" / "node-loss"))
    job = submit(cluster, "pipelines.train_hand", cfg, tmp_path)
    wait_while_running(job, lambda: ray_train.committed_step(fs, root) >= 2, "a committed checkpoint", tmp_path, "train-hand")
    committed = ray_train.committed_step(fs, root)
    cluster.lose_a_node_then_replace_it()
    finish(job, cluster, tmp_path, "train-hand")
    assert committed < steps  # the node went while training
    loss_steps = [s for s, _ in ray_train.history(uri, "handdiff-train-hand", "node-loss", "loss")]
    assert set(loss_steps) == set(range(1, steps + 1))
    resumed = ray_train.history(uri, "handdiff-train-hand", "node-loss", "resumed_from_step")
    assert resumed and resumed[0][1] >= committed  # from the committed checkpoint, not from scratch
    assert ray_train.checkpoint_names(fs, root)[-1] == f"step_{steps:08d}"
