"""A throwaway single-node SLURM cluster on localhost from Debian's packages, for integration tests.

Needs root: it installs packages, links /etc/slurm/slurm.conf and binds the SLURM ports. The daemons
run in the foreground as children of this process (so it reaps them, whatever PID 1 does) and are
stopped by their PIDs only.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
# The executor's in-job `srun` drops SLURM_* variables (SLURM_CONF too), so the config must be
# found at the compiled-in default path; slurmd reads gres.conf from there as well.
SYSTEM_CONF_DIR = Path("/etc/slurm")
CONF_FILES = ("slurm.conf", "gres.conf")
# Stand-ins for GPUs: SLURM schedules any device file as a GPU and sets CUDA_VISIBLE_DEVICES.
FAKE_GPU_DEVICES = ("/dev/null", "/dev/zero")
CTLD_PORT, SLURMD_PORT = 6817, 6818
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN_DIR = Path("/run/munge")


class ClusterUnavailable(Exception):
    """This machine cannot host the test cluster; the message says why (a skip reason)."""


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def install_packages() -> None:
    if os.geteuid() != 0:
        raise ClusterUnavailable("needs root (installs packages, writes /etc/slurm/slurm.conf)")
    if all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    if not shutil.which("apt-get"):
        raise ClusterUnavailable("SLURM is not installed and there is no apt-get to install it")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = _run(install, env=env, timeout=600)
    if done.returncode != 0:
        _run(["apt-get", "update"], env=env, timeout=600)
        done = _run(install, env=env, timeout=600)
    if done.returncode != 0:
        raise ClusterUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr.strip()[-500:]}")


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def node_memory_mb() -> int:
    with open("/proc/meminfo") as meminfo:
        total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return total_kb // 1024


class LocalSlurm:
    """slurmctld + slurmd (+ munged unless one already answers) with one partition on localhost.

    The node has every CPU of this machine and two GPUs backed by no hardware, so that jobs
    asking for GPUs are scheduled as on a GPU cluster (and run on the CPU).
    """

    def __init__(self, base: Path, partition: str):
        self.base = Path(base)
        self.partition = partition
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.base / "slurm.conf"
        self.log_dir = self.base / "log"
        self.daemons: list[tuple[str, subprocess.Popen]] = []
        self.linked: list[Path] = []
        self.backups: dict[Path, Path] = {}

    def write_conf(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        # Jobs here are declared, not enforced (no cgroups), so the node may advertise at least
        # 8 GB even on a smaller machine: the rules' own mem_mb then always fits.
        memory_mb = max(node_memory_mb() - 2048, 8192)
        self.conf.write_text(f"""\
ClusterName=compgentest
SlurmctldHost={self.node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort={CTLD_PORT}
SlurmdPort={SLURMD_PORT}
StateSaveLocation={self.base}/state
SlurmdSpoolDir={self.base}/spool
SlurmctldPidFile={self.base}/slurmctld.pid
SlurmdPidFile={self.base}/slurmd.pid
SlurmctldLogFile={self.log_dir}/slurmctld.log
SlurmdLogFile={self.log_dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SlurmdParameters=config_overrides
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# No accounting, so job states come from squeue, which must keep finished jobs long enough.
MinJobAge=600
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory_mb} \
  Gres=gpu:{len(FAKE_GPU_DEVICES)} State=UNKNOWN
# Not the default partition: a job only runs here when the profile passes the partition on.
PartitionName={self.partition} Nodes={self.node} Default=NO MaxTime=INFINITE State=UP
""")
        (self.base / "gres.conf").write_text("".join(f"Name=gpu File={dev}\n" for dev in FAKE_GPU_DEVICES))

    def link_conf(self) -> None:
        SYSTEM_CONF_DIR.mkdir(parents=True, exist_ok=True)
        for name in CONF_FILES:
            system = SYSTEM_CONF_DIR / name
            if system.exists() or system.is_symlink():
                backup = system.with_name(f"{name}.before-compgen-test-{os.getpid()}")
                system.rename(backup)
                self.backups[system] = backup
            system.symlink_to(self.base / name)
            self.linked.append(system)

    def start_daemon(self, name: str, cmd: list[str], **kwargs) -> None:
        log = open(self.log_dir / f"{name}.out", "w")
        self.daemons.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **kwargs)))
        log.close()

    def start_munge(self) -> None:
        if _run(["munge", "-n"]).returncode == 0:
            return  # a munged is already serving this machine; use it and leave it alone
        if not MUNGE_KEY.exists():
            _run(["mungekey", "--create", f"--keyfile={MUNGE_KEY}"], check=True)
            shutil.chown(MUNGE_KEY, "munge", "munge")
            MUNGE_KEY.chmod(0o400)
        MUNGE_RUN_DIR.mkdir(exist_ok=True)
        shutil.chown(MUNGE_RUN_DIR, "munge", "munge")
        self.start_daemon(
            "munged", ["munged", "--foreground", "--force"], user="munge", group="munge", extra_groups=[]
        )
        self.wait_for(lambda: _run(["munge", "-n"]).returncode == 0, "munged to answer", 20)

    def start(self) -> None:
        busy = [port for port in (CTLD_PORT, SLURMD_PORT) if port_in_use(port)]
        if busy:
            raise ClusterUnavailable(f"SLURM ports {busy} are in use (another cluster on this machine?)")
        self.write_conf()
        self.link_conf()
        self.start_munge()
        self.start_daemon("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
        self.start_daemon("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
        self.wait_for(self.node_idle, f"node {self.node} to be idle", 60)

    def node_idle(self) -> bool:
        return _run(["sinfo", "-h", "-n", self.node, "-o", "%t"]).stdout.strip() == "idle"

    def wait_for(self, condition, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            dead = [(name, p.returncode) for name, p in self.daemons if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"gave up waiting for {what}; exited daemons {dead}\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for path in sorted(self.log_dir.glob("*"))
            if path.is_file()
        )

    def job_states(self) -> dict[str, str]:
        """SLURM job id -> state for every job this cluster still remembers."""
        out = _run(["squeue", "-h", "--states=all", "-o", "%i %T"]).stdout.split()
        return dict(zip(out[::2], out[1::2], strict=True))

    def running_jobs(self) -> dict[str, str]:
        """SLURM job id -> comment of every running job."""
        out = _run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"]).stdout
        return dict(line.split(maxsplit=1) for line in out.splitlines())

    def job_record(self, job_id: str) -> dict[str, str]:
        """What the controller holds about a job (`scontrol show job`), e.g. TresPerJob, TimeLimit."""
        out = _run(["scontrol", "show", "job", "--oneliner", job_id]).stdout
        return dict(re.findall(r"(\w[\w:/]*)=(\S*)", out))

    def stop(self) -> None:
        if any(name == "slurmctld" and p.poll() is None for name, p in self.daemons):
            # Job steps outlive slurmd (they are not its children): end them while it still runs.
            live = [job for job, state in self.job_states().items() if state in {"PENDING", "RUNNING"}]
            if live:
                _run(["scancel", *live])
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and any(
                    state in {"PENDING", "RUNNING", "COMPLETING"} for state in self.job_states().values()
                ):
                    time.sleep(0.5)
        for _name, process in reversed(self.daemons):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.daemons.clear()
        while self.linked:
            self.linked.pop().unlink(missing_ok=True)
        for system, backup in self.backups.items():
            backup.rename(system)
        self.backups.clear()
