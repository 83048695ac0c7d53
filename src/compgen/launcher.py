"""`compgen run [snakemake arguments]`: Snakemake, with every config file read strictly before
Snakemake reads it.

Snakemake loads and merges the `--configfile` files (the command line's and its profiles') while it
parses its arguments, before the Snakefile runs: the Snakefile's own check
(`compgen.config.check_config_files`) comes too late for two kinds of file.

- A mapping alias bomb (each level a mapping of aliases to the one before): Snakemake's merge
  (`snakemake.utils.update_config`) copies every aliased mapping, so a file of 900 bytes expands
  to billions of values and `snakemake -n` hangs, its memory growing, before any compgen code
  runs (measured: still running after 60 s at 2.2 GB; under a 4 GB limit, out of memory at 116 s).
- A YAML template (`__use_yte__: true` at the top level): Snakemake renders it with YTE, which
  evaluates its `?`-expressions as Python.

This launcher runs Snakemake's own command line in this process, with Snakemake's config loader
(`snakemake.common.configfile.load_configfile`, also imported by `snakemake.settings.types`)
guarded: every file Snakemake reads as a config (`--configfile`, a profile's `configfile`, the
Snakefile's `configfile:`) is first read by compgen's strict loader, which counts aliased values
without expanding them and refuses more than MAX_CONFIG_VALUES, a key given twice, and a YTE
template. `--config key=value` values are bounded the same way. A refusal is one line naming the
file, and Snakemake has read nothing of it. Plain `snakemake` has none of this.

Why a launcher: a profile only sets default arguments (nothing in it runs before the merge, which
happens while Snakemake turns its arguments into settings, `ConfigSettings`), and a Snakemake with
a bounded loader would be a fork that `pyproject.toml` cannot pin from PyPI. The guard replaces
one function of the pinned Snakemake (9.27.1); tests/test_launcher.py fails if a new version
loads config files from anywhere else.
"""

from __future__ import annotations

import functools
import os
import sys

import yaml

from compgen.config import ConfigError, check_config_files, check_config_size, load_config_file

USAGE = "usage: compgen run [snakemake arguments]   (snakemake, with every config file checked first)"
# The top-level key that makes Snakemake render a YAML config file as a YTE template.
YTE_KEY = "__use_yte__"


def check_config_file(path) -> None:
    """What compgen requires of a file before Snakemake may read it: the Snakefile's strict check
    (a key given twice, more than MAX_CONFIG_VALUES values once aliases are expanded), then no
    YTE template. Raises ConfigError naming the file."""
    check_config_files([path])
    config = load_config_file(path)
    if isinstance(config, dict) and YTE_KEY in config:
        raise ConfigError(
            f"config file {path}: {YTE_KEY} makes Snakemake evaluate the file's YTE expressions as "
            "Python; a compgen config is plain YAML or JSON"
        )


def check_config_values(entries) -> None:
    """Bound the `--config key=value` values as Snakemake will read them (its last YAML try, with
    yaml's BaseLoader, which shares an aliased value instead of copying it) before its merge copies
    them."""
    for entry in entries or ():
        key, sep, value = entry.partition("=")
        if not sep:
            continue  # Snakemake says what is wrong with it
        loader = yaml.BaseLoader(value)
        try:
            parsed = loader.get_single_data()
        except yaml.YAMLError:
            continue  # Snakemake takes it as a string
        finally:
            loader.dispose()
        try:
            check_config_size({key: parsed})
        except ConfigError as err:
            raise ConfigError(f"--config {key}=...: {err}") from None


def _guarded(load):
    from snakemake.exceptions import WorkflowError

    @functools.wraps(load)
    def load_configfile(configpath):
        if isinstance(configpath, (str, os.PathLike)) and os.path.isfile(configpath):
            try:
                check_config_file(configpath)
            except ConfigError as err:  # Snakemake prints a WorkflowError's message, not its traceback
                raise WorkflowError(str(err)) from None
        return load(configpath)  # a missing file: Snakemake's own message

    load_configfile.compgen_guarded = True
    return load_configfile


def guard_snakemake_config_loader() -> None:
    """Make Snakemake's config loader check each file first (check_config_file). Snakemake imports
    it in two places: its own module, where the Snakefile's `configfile:` finds it, and the
    settings module, which reads `--configfile` (tests/test_launcher.py checks there are no others)."""
    import snakemake.common.configfile as configfile
    import snakemake.settings.types as settings

    if not getattr(configfile.load_configfile, "compgen_guarded", False):
        configfile.load_configfile = _guarded(configfile.load_configfile)
    settings.load_configfile = configfile.load_configfile


def run(argv: list[str]) -> int:
    """Snakemake's `main` on `argv`, with the config files and values checked first; the exit code."""
    from snakemake.cli import args_to_api, parse_args
    from snakemake.exceptions import print_exception

    guard_snakemake_config_loader()
    try:
        parser, args = parse_args(argv)
        # The files Snakemake is about to merge (the command line's and the profiles'), before it
        # starts: the guard catches what a Snakefile loads itself.
        for path in args.configfile or ():
            if os.path.isfile(path):
                check_config_file(path)
        check_config_values(args.config)
        success = args_to_api(args, parser)
    except ConfigError as err:
        print(f"compgen run: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # as snakemake's main: its message, exit code 1
        print_exception(err)
        return 1
    return 0 if success else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{USAGE}\n\n{__doc__}")
        return 0
    if argv[:1] != ["run"]:
        print(USAGE, file=sys.stderr)
        return 2
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
