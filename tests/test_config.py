"""The config model: defaults, strictness and the messages a user sees."""

from pathlib import Path
from typing import Any

import pytest

from pstm.config import Backend, PstmConfig, load_config, parse_config
from pstm.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_repository_config_is_valid_and_equals_defaults() -> None:
    assert load_config(REPO / "config.yaml") == PstmConfig()


def test_misspelled_key_names_path_and_allowed_keys() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"migration": {"apperture_m": 500}})
    msg = str(err.value)
    assert "migration.apperture_m: unknown key (did you mean 'aperture_m'?)" in msg
    assert "aperture_m" in msg.split("Allowed keys here:")[1]


def test_a_section_check_says_its_message_once() -> None:
    """A check of a whole section gives its own message: without pydantic's "Value error, "
    before it and without the section's contents after it."""
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "velocity": {
                    "kind": "table_csv",
                    "file": "v.csv",
                    "table": {"time_s": [0.0], "vrms_mps": [2000.0]},
                }
            }
        )
    msg = str(err.value)
    assert "velocity: 'table' is not used by kind 'table_csv': remove it" in msg
    assert "Value error" not in msg and "got {" not in msg


@pytest.mark.parametrize(
    ("edit", "hint"),
    [
        ({"grid": {"smoothing_length": 1}}, None),  # no key of grid is close
        ({"velocity": {"smoothing_length": 1}}, "'smoothing_length_m' or 'smoothing_length_s'"),
        ({"migration": {"max_tile_jobs": 4}}, "(it is a key of execution)"),
        ({"velocity": {"time_s": [0.0]}}, "(it is a key of velocity.table)"),
    ],
)
def test_unknown_key_hints(edit: dict[str, Any], hint: str | None) -> None:
    """Equally close keys are all suggested; a key of another section says where it goes."""
    with pytest.raises(ConfigError) as err:
        parse_config(edit)
    line = next(x for x in str(err.value).splitlines() if "unknown key" in x)
    if hint is None:
        assert "unknown key. Allowed" in line
    else:
        assert hint in line, line


def test_a_mapping_where_a_value_belongs_is_shown_by_its_keys() -> None:
    """Mis-indented YAML puts a mapping where a value belongs: its keys are the clue."""
    with pytest.raises(
        ConfigError, match=r"velocity.type: .*got a mapping with the keys smoothing"
    ):
        parse_config({"velocity": {"type": {"smoothing": "boxcar"}}})


def test_unknown_top_level_section() -> None:
    with pytest.raises(ConfigError, match=r"migrations: unknown key.*migration"):
        parse_config({"migrations": {}})


def test_invalid_enum_names_value_and_options() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"migration": {"backend": "gpu"}})
    msg = str(err.value)
    assert "migration.backend" in msg and "'gpu'" in msg
    for option in Backend:
        assert f"'{option.value}'" in msg


def test_wrong_type() -> None:
    with pytest.raises(ConfigError, match=r"grid.n_inline.*'many'"):
        parse_config({"grid": {"n_inline": "many"}})


def test_enum_is_parsed_once_into_the_enum() -> None:
    cfg = parse_config({"migration": {"backend": "numpy"}})
    assert cfg.migration.backend is Backend.NUMPY


@pytest.mark.parametrize(
    ("section", "bad", "match"),
    [
        ("velocity", {"kind": "constant"}, "needs 'constant_mps'"),
        (
            "velocity",
            {"table": {"time_s": [0.0, 0.0], "vrms_mps": [2000, 2100]}},
            "strictly increasing",
        ),
        (
            "velocity",
            {"table": {"time_s": [0.0, 1.0], "vrms_mps": [-2000, 2100]}},
            "finite and positive",
        ),
        ("grid", {"dt_s": 0.0}, "grid.dt_s"),
        ("grid", {"dt_s": -0.004}, "grid.dt_s"),
        ("execution", {"tile_n_inline": 0}, "execution.tile_n_inline"),
        ("input", {"kind": "zarr"}, "needs both"),
        ("migration", {"offset_classes_m": [500, 100]}, "increasing"),
        (
            "migration",
            {"max_angle_deg": 30.0, "angle_taper_deg": 60.0},
            r"angle_taper_deg \(60\) must not exceed max_angle_deg \(30\)",
        ),
        ("migration", {"angle_taper_deg": 10.0}, r"angle_taper_deg \(10\) needs an angle limit"),
        ("qc", {"inline_index": 40}, r"qc\.inline_index 40 is off the grid: it is an index from 0"),
        ("qc", {"crossline_index": -1}, r"qc\.crossline_index -1 is off the grid"),
    ],
)
def test_invalid_values(section: str, bad: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config({section: bad})


def test_malformed_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("grid: {n_inline: 4\n  nt: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


@pytest.mark.parametrize(
    ("value", "grid", "resolved"),
    [
        ("auto", {"inline_spacing_m": 12.5, "crossline_spacing_m": 25.0}, [12.5, 25.0]),
        (
            "auto",
            {"inline_spacing_m": 12.5, "crossline_spacing_m": 25.0, "n_crossline": 1},
            [12.5, 12.5],
        ),
        (
            "auto",
            {"inline_spacing_m": 12.5, "crossline_spacing_m": 25.0, "n_inline": 1},
            [25.0, 25.0],
        ),
        (30.0, {}, [30.0, 30.0]),
        ([10.0, 40.0], {}, [10.0, 40.0]),
    ],
)
def test_antialias_spacing_resolves_to_inline_and_crossline(
    value: Any, grid: dict[str, Any], resolved: list[float]
) -> None:
    """One number is both directions' spacing; auto is each direction's bin spacing, a 2D
    line's inline spacing for both; the resolved config records the pair."""
    import yaml

    from pstm.pipeline import prepare_run
    from tests.helpers import tiny_config

    cfg = tiny_config(migration={"antialias_spacing_m": value}, grid=grid)
    cfg["execution"] = {"tile_n_inline": "auto", "tile_n_crossline": "auto"}
    run = prepare_run(cfg)
    assert run.config.migration.antialias_spacing_m == tuple(resolved)
    written = yaml.safe_load(run.resolved_yaml())["migration"]["antialias_spacing_m"]
    assert written == resolved
    assert parse_config(yaml.safe_load(run.resolved_yaml())) == run.config  # it reads back


@pytest.mark.parametrize("bad", [[0.0, 25.0], [12.5, 25.0, 50.0], "wide"])
def test_antialias_spacing_rejects_bad_values(bad: Any) -> None:
    """A union's error lists its forms once, and quotes the form the value came closest to."""
    with pytest.raises(ConfigError) as exc:
        parse_config({"migration": {"antialias_spacing_m": bad}})
    message = str(exc.value)
    expected = f"migration.antialias_spacing_m: must be a number, a list of 2 numbers or 'auto' (got {bad!r})"
    assert expected in message and message.count("antialias_spacing_m") == 1
    if bad == [0.0, 25.0]:
        assert "as a list of 2 numbers: item 0: Input should be greater than 0" in message


@pytest.mark.parametrize("key", ["antialias-spacing", "max offset", "2nd_aperture"])
def test_an_unknown_key_that_is_no_identifier_is_still_an_unknown_key(key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"migration": {key: 3}})
    assert f"migration.{key}: unknown key" in str(exc.value)
