# Input stage: the built-in synthetic survey or a SEG-Y import, both to results/input
# (Zarr + Parquet input is read in place). Only the rule for input.kind is defined.
from pstm.config import InputKind, section_params


if RUN.config.input.kind is InputKind.SYNTHETIC:

    rule synthesize:
        output:
            traces=directory("results/input/traces.zarr"),
            headers="results/input/headers.parquet",
            truth="results/input/truth.json",
        params:
            **RUN.params("synthesize", "synthetic"),
        priority: CRITICAL_PATH_PRIORITY
        conda:
            "../../environment.yml"
        log:
            "logs/synthesize/synthesize.log",
        script:
            "../scripts/synthesize.py"


if RUN.config.input.kind is InputKind.SEGY:

    rule import_segy:
        input:
            str(RUN.config.input.segy.path),
        output:
            traces=directory("results/input/traces.zarr"),
            headers="results/input/headers.parquet",
        params:
            **RUN.params("import_segy", segy=section_params(RUN.config.input.segy)),
        priority: CRITICAL_PATH_PRIORITY
        conda:
            "../../environment.yml"
        log:
            "logs/import_segy/import_segy.log",
        script:
            "../scripts/import_segy.py"
