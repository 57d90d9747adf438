"""Helpers of the cluster tests (broker, databases, worker processes), importable by the test
modules as ``cluster_support`` (every test directory has its own ``conftest``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from audit.config import SimulatorConfig

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BROKER_URL = os.environ.get("AUDIT_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
PREFIX = f"audittest{uuid.uuid4().hex[:8]}"
ARCHIVE = SimulatorConfig(
    seed=23,
    regions=1,
    cities_per_region=2,
    stores=3,
    staff_per_store=3,
    customers_per_staff=8,
    days=2,
    messages=2000,
    key_bits=1024,
    images=False,
)
# several tasks per stage, so that a worker can die in the middle of one and others remain
TASK_SIZES = {
    "AUDIT_CLUSTER__DECRYPT_BATCH": "500",
    "AUDIT_CLUSTER__SCAN_BATCH": "500",
    "AUDIT_CLUSTER__SCORE_BATCH": "150",
    "AUDIT_CLUSTER__PARTITIONS": "4",
    "AUDIT_CLUSTER__MAX_RETRIES": "2",
    "AUDIT_CLUSTER__RETRY_BACKOFF_MAX": "2",
    "AUDIT_CLUSTER__TASK_TIMEOUT": "900",
}


def delete_queues(broker: str, prefix: str) -> None:
    """The session's queues (durable: they would outlive it)."""
    from kombu import Connection

    from audit.cluster.app import KINDS

    with Connection(broker, connect_timeout=3) as conn:
        for kind in KINDS:
            channel = conn.channel()
            try:
                channel.queue_delete(queue=f"{prefix}.{kind}")
            except Exception:  # never declared in this session
                pass
            finally:
                with contextlib.suppress(Exception):
                    channel.close()


def environment(db_url: str, archive: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
            "AUDIT_DATABASE__URL": db_url,
            "AUDIT_ARCHIVE__SIMULATOR_DIR": str(archive),
            "AUDIT_IMAGES__ENABLED": "false",
            "AUDIT_CLUSTER__BROKER_URL": BROKER_URL,
            "AUDIT_CLUSTER__QUEUE_PREFIX": PREFIX,
            "C_FORCE_ROOT": "1",  # containers run as root
            **TASK_SIZES,
            **extra,
        }
    )
    if os.environ.get("AUDIT_SCAN_CACHE"):
        env["AUDIT_SCAN_CACHE"] = os.environ["AUDIT_SCAN_CACHE"]
    return env


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def coordinator(env: dict[str, str], archive: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "audit", "run", "--distributed", "--path", str(archive), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 1200) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{err[-4000:]}"
    return out, err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rabbitmq_bin(name: str) -> str | None:
    """The script itself: Debian's wrapper in /usr/sbin switches to the rabbitmq user."""
    direct = Path("/usr/lib/rabbitmq/bin") / name
    return str(direct) if direct.exists() else shutil.which(name)


class OwnBroker:
    """A RabbitMQ node of the test's own (its own port, data and cookie in a temporary
    directory), to be restarted without disturbing the tests that share the usual broker."""

    def __init__(self, directory: Path) -> None:
        server, self.ctl_path = _rabbitmq_bin("rabbitmq-server"), _rabbitmq_bin("rabbitmqctl")
        if server is None or self.ctl_path is None:
            raise FileNotFoundError("rabbitmq-server / rabbitmqctl not installed")
        self.dir = directory
        self.port = _free_port()
        self.node = f"audittest{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        (directory / "plugins").write_text("[].\n")
        env = {
            **self._ctl_env(),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(_free_port()),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),  # none: defaults
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(directory / "plugins-expand"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_PID_FILE": str(directory / "pid"),
        }
        self.log = directory / "server.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [server], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _ctl_env(self) -> dict[str, str]:
        # the cookie of this node only: HOME is where the Erlang cookie is kept
        return {"HOME": str(self.dir), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def ctl(self, *args: str, timeout: float = 120) -> None:
        assert self.ctl_path is not None
        proc = subprocess.run(
            [self.ctl_path, "-q", "-n", self.node, *args],
            env=self._ctl_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"rabbitmqctl {' '.join(args)}: {proc.stderr[-2000:]}"

    def wait_ready(self, timeout: int = 180) -> None:
        try:
            self.ctl("wait", str(self.dir / "pid"), "--timeout", str(timeout), timeout=timeout + 30)
        except AssertionError:
            raise AssertionError(self.log.read_text()[-3000:]) from None

    def shutdown(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.ctl("shutdown", timeout=60)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(60)


# ----------------------------------------------------------------------- another host
# Workers on another host, simulated on this one: a network namespace joined to this one by
# a veth pair. Inside it the broker and PostgreSQL are not on the loopback address; they are
# reached at this side's address of the link, where a forwarder passes each connection on to
# the service (which sees it come from its own loopback address, as its access rules want).

LINK_NET = "10.231"


def netns_skip_reason() -> str | None:
    """Why workers cannot be put in a network namespace here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    probe = f"auditprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class _Forwarder:
    """Accepts on (address, port) and passes every connection on to ``target``; counts the
    bytes that crossed."""

    def __init__(self, address: str, port: int, target: tuple[str, int]) -> None:
        import threading

        self.target = target
        self.bytes = 0
        self._lock = threading.Lock()
        self._server = socket.create_server((address, port))
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                with self._lock:
                    self.bytes += len(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._server.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.close()


class OtherHost:
    """A network namespace reached over a veth link (``with OtherHost(urls) as host``):
    ``host.prefix`` runs a command in it, ``host.url(url)`` is how a process there reaches
    the service of ``url`` (one of ``urls``: PostgreSQL or AMQP URLs)."""

    def __init__(self, urls: list[str]) -> None:
        tag = uuid.uuid4().hex[:6]
        self.name = f"audit{tag}"
        self.here, self.there = f"va{tag}", f"vb{tag}"
        octet = int(tag[:2], 16)
        self.address = f"{LINK_NET}.{octet}.1"
        self.peer = f"{LINK_NET}.{octet}.2"
        self.prefix = ["ip", "netns", "exec", self.name]
        self.services = {self._hostport(u) for u in urls}
        self.forwarders: dict[tuple[str, int], _Forwarder] = {}

    @staticmethod
    def _hostport(url: str) -> tuple[str, int]:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        default = 5432 if parts.scheme.startswith("postgres") else 5672
        return parts.hostname or "127.0.0.1", parts.port or default

    def url(self, url: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(url)
        _, port = self._hostport(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@" if userinfo else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.address}:{port}"))

    def _ip(self, *args: str) -> None:
        proc = subprocess.run(["ip", *args], capture_output=True, text=True)
        assert proc.returncode == 0, f"ip {' '.join(args)}: {proc.stderr}"

    def __enter__(self) -> OtherHost:
        self._ip("netns", "add", self.name)
        try:
            self._ip("link", "add", self.here, "type", "veth", "peer", "name", self.there)
            self._ip("link", "set", self.there, "netns", self.name)
            self._ip("addr", "add", f"{self.address}/30", "dev", self.here)
            self._ip("link", "set", self.here, "up")
            inside = ("netns", "exec", self.name, "ip")
            self._ip(*inside, "addr", "add", f"{self.peer}/30", "dev", self.there)
            self._ip(*inside, "link", "set", self.there, "up")
            self._ip(*inside, "link", "set", "lo", "up")
            for host, port in self.services:
                self.forwarders[(host, port)] = _Forwarder(self.address, port, (host, port))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def reaches(self, host: str, port: int) -> bool:
        """Whether a process in the namespace can open a connection to (host, port)."""
        code = (
            "import socket,sys\n"
            "try: socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n"
            "except OSError: sys.exit(1)\n"
        )
        probe = [*self.prefix, sys.executable, "-c", code, host, str(port)]
        return subprocess.run(probe, capture_output=True).returncode == 0

    def __exit__(self, *exc: object) -> None:
        for forwarder in self.forwarders.values():
            forwarder.close()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.here], capture_output=True)  # if still there
