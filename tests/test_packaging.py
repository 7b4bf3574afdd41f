"""environment.yml and pyproject.toml list the same dependencies with the same bounds."""

import re
import tomllib

import yaml

from tests.helpers import REPO

#: pyproject.toml extras that environment.yml includes (what a cluster node needs).
CONDA_EXTRAS = ("slurm",)


def _spec(spec: str) -> tuple[str, str]:
    """(normalised name, version bounds without spaces) of a requirement string. A pip
    extra (``snakemake[reports]``) is dropped: conda's full package carries it."""
    name, bounds = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*(.*)", spec).groups()  # type: ignore[union-attr]
    return re.sub(r"[-_.]+", "-", name).lower(), bounds.replace(" ", "")


def pyproject_specs() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in CONDA_EXTRAS:
        specs += project["optional-dependencies"][extra]
    return dict(_spec(s) for s in specs)


def conda_specs() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    specs = [d for d in env["dependencies"] if isinstance(d, str)]
    return {name: b for name, b in map(_spec, specs) if name not in ("python", "pip")}


def test_environment_matches_pyproject() -> None:
    assert conda_specs() == pyproject_specs()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert f"python{project['requires-python']}" in env["dependencies"]


def test_comparison_can_fail() -> None:
    conda = conda_specs()
    conda["numpy"] = ">=0.1"
    assert conda != pyproject_specs()
    assert _spec("snakemake[reports]>=9") == ("snakemake", ">=9")
    assert _spec("snakemake_executor-plugin.SLURM >= 2.8") == (
        "snakemake-executor-plugin-slurm",
        ">=2.8",
    )
