"""A job's log file holds its traceback when the job fails (compgen.logs.setup_logging's sys.excepthook)."""

import shutil
import subprocess
import sys

import pytest

from conftest import TEST_CONFIGS, run_snakemake


def test_an_uncaught_exception_goes_to_the_log_file_and_stderr(tmp_path):
    log = tmp_path / "logs/job.log"
    script = (
        "from compgen.logs import setup_logging\n"
        f"setup_logging({str(log)!r})\n"
        "def inner():\n"
        "    raise RuntimeError('the data ran out')\n"
        "inner()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in inner" in text
    assert "RuntimeError: the data ran out" in text
    assert done.stderr.count("Traceback") == 1 and "RuntimeError: the data ran out" in done.stderr


def test_keyboard_interrupt_is_left_to_python(tmp_path):
    log = tmp_path / "job.log"
    script = f"from compgen.logs import setup_logging\nsetup_logging({str(log)!r})\nraise KeyboardInterrupt\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr
    assert "Traceback" not in log.read_text()


def snakemake(workdir, *args):
    return run_snakemake(
        workdir, "--configfile", str(workdir / "config.yaml"), "--cores", "1", *args, timeout=600
    )


@pytest.mark.workflow
def test_a_failing_rule_leaves_its_traceback_in_its_log(tmp_path):
    shutil.copy(TEST_CONFIGS / "rerun.yaml", tmp_path / "config.yaml")  # circles, condition shape2px
    prepared = snakemake(tmp_path, "results/data/circles.h5")
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    # The prepared dataset is replaced by a corrupt file, so the split job fails reading it.
    (tmp_path / "results/data/circles.h5").write_bytes(b"not an HDF5 file\n" * 64)
    failed = snakemake(tmp_path, "results/splits/circles/shape2px.npz")
    assert failed.returncode != 0
    assert "Error in rule make_split" in failed.stderr + failed.stdout
    log = (tmp_path / "results/logs/make_split/circles/shape2px.log").read_text()
    assert "Traceback (most recent call last)" in log
    assert "DatasetError: results/data/circles.h5: not a readable HDF5 file" in log
    assert not (tmp_path / "results/splits/circles/shape2px.npz").exists()
