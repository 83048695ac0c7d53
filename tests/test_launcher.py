"""`compgen run`: Snakemake merges the --configfile files before the Snakefile
runs, copying every aliased mapping, so a mapping alias bomb hangs plain `snakemake -n`; and it
renders a file with `__use_yte__` as a template whose expressions are Python. The launcher reads
every config file strictly first (compgen.launcher). Each Snakemake here runs in a subprocess
under a 4 GB address-space limit, so a check that failed would end in a MemoryError, not a
machine out of memory; the timeout only guards against a hang."""

import re
import resource
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from compgen.config import MAX_CONFIG_VALUES
from compgen.launcher import main
from conftest import ROOT

# 9 levels, each a mapping of nine aliases to the last: 9 ** 9 * 9 = 3.5 billion values from 873
# bytes. PyYAML shares an aliased mapping; Snakemake's merge (update_config) copies it.
MAP_BOMB = "l0: &l0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}\n" + "".join(
    f"l{k}: &l{k} {{{', '.join(f'k{j}: *l{k - 1}' for j in range(9))}}}\n" for k in range(1, 10)
)
MEMORY_LIMIT = 4 * 1024**3


def refusal(where: str) -> str:
    return (
        f"{where}: more than {MAX_CONFIG_VALUES:,} values once YAML aliases are expanded; "
        f"a config may hold at most {MAX_CONFIG_VALUES:,}"
    )


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def compgen_run(workdir, *args, snakefile=ROOT / "Snakefile") -> tuple[int, str]:
    """`compgen run` (as `python -m compgen.launcher run`) with this checkout's Snakefile in
    `workdir`, under the memory limit: the exit code and the output."""
    command = [sys.executable, "-m", "compgen.launcher", "run", "--snakefile", str(snakefile)]
    done = subprocess.run(
        [*command, "--directory", str(workdir), "--cores", "1", "-n", *args],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_memory,
    )
    return done.returncode, done.stdout + done.stderr


def assert_refused(code: int, out: str, message: str, workdir) -> None:
    assert code == 1, out
    assert message in out, out
    assert "Building DAG" not in out and not (workdir / "results").exists()


@pytest.fixture
def bomb(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(MAP_BOMB)
    return path


def test_mapping_bomb_is_refused_before_snakemake_reads_it(tmp_path, bomb):
    code, out = compgen_run(tmp_path, "--configfile", str(bomb))
    assert_refused(code, out, f"compgen run: {refusal(f'config file {bomb} (key l6)')}", tmp_path)


def test_a_profiles_configfile_is_checked(tmp_path, bomb):
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "config.yaml").write_text(f"configfile: {bomb}\n")
    code, out = compgen_run(tmp_path, "--profile", str(profile))
    assert_refused(code, out, f"compgen run: {refusal(f'config file {bomb} (key l6)')}", tmp_path)


def test_a_config_value_is_bounded(tmp_path):
    value = "{" + ", ".join(MAP_BOMB.splitlines()) + "}"
    code, out = compgen_run(tmp_path, "--config", f"bomb={value}")
    assert_refused(code, out, f"compgen run: --config bomb=...: {refusal('config key bomb')}", tmp_path)


def test_a_configfile_the_snakefile_loads_is_checked(tmp_path, bomb):
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(f'configfile: "{bomb}"\n\n\nrule all:\n    shell:\n        "true"\n')
    code, out = compgen_run(tmp_path, snakefile=snakefile)
    assert_refused(code, out, refusal(f"config file {bomb} (key l6)"), tmp_path)


def test_a_yte_template_is_refused_before_its_code_runs(tmp_path):
    ran = tmp_path / "ran"
    path = tmp_path / "template.yaml"
    path.write_text(f"__use_yte__: true\nx: ?__import__('pathlib').Path('{ran}').write_text('yes')\n")
    code, out = compgen_run(tmp_path, "--configfile", str(path))
    message = f"compgen run: config file {path}: __use_yte__ makes Snakemake evaluate the file's YTE"
    assert_refused(code, out, message, tmp_path)
    assert not ran.exists()


def test_a_plain_config_reaches_the_snakefile(tmp_path):
    (tmp_path / "study.yaml").write_text("out: done.txt\nshared: &s {a: 1}\nagain: *s\n")
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        'rule all:\n    output:\n        config["out"],\n    shell:\n        "touch {output}"\n'
    )
    code, out = compgen_run(tmp_path, "--configfile", str(tmp_path / "study.yaml"), snakefile=snakefile)
    assert code == 0, out
    assert "done.txt" in out and "This was a dry-run" in out


def test_snakemakes_merge_still_copies_aliased_mappings():
    """Why the Snakefile's own check comes too late: Snakemake's merge of --configfile files copies
    each aliased mapping (a 9-level bomb: billions of values) before any compgen code runs."""
    from snakemake.utils import update_config

    shared = {"a": 1}
    merged: dict = {}
    update_config(merged, {"x": shared, "y": shared})
    assert merged["x"] == merged["y"] == shared and merged["x"] is not merged["y"]


def test_the_guard_covers_every_place_snakemake_loads_a_config_file():
    """compgen.launcher replaces snakemake.common.configfile.load_configfile and the name
    snakemake.settings.types imports; workflow.py imports it inside `configfile`, when called.
    Another import site in a new Snakemake would escape the guard: this test says so."""
    import snakemake

    package = Path(snakemake.__file__).parent
    sites = {}
    for path in sorted(package.rglob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.search(r"(?<!_)\bload_configfile\b", line) and ("import" in line or "def " in line):
                sites.setdefault(path.relative_to(package).as_posix(), []).append(line)
    assert sites == {
        "common/configfile.py": ["def load_configfile(configpath):"],
        "settings/types.py": ["from snakemake.common.configfile import load_configfile"],
        "workflow.py": ["        from snakemake.common.configfile import load_configfile"],
    }


def test_usage_and_the_console_script():
    assert main([]) == 2 and main(["snakemake", "-n"]) == 2
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"compgen": "compgen.launcher:main"}


def test_the_makefile_runs_snakemake_through_the_launcher():
    commands = [line.strip() for line in (ROOT / "Makefile").read_text().splitlines() if "$(BIN)/" in line]
    assert not [c for c in commands if c.startswith("$(BIN)/snakemake")]
    assert "$(BIN)/compgen run --cores $(CORES) --configfile config/demo.yaml" in commands
