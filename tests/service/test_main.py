"""threadpool/__main__.py: `python -m threadpool serve|check`, also the `threadpool` script."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from threadpool.__main__ import main

from .conftest import REPO, doc, write


def test_check_says_a_valid_file_is_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "config.yaml", doc())
    assert main(["check", "--config", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid (pools: 1, queues: 1)\n"


def test_check_names_a_retired_key_and_still_says_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = doc()
    d["service"]["scale_interval"] = 0.5
    path = write(tmp_path / "config.yaml", d)
    assert main(["check", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: valid (pools: 1, queues: 1)\n"
    (warning,) = err.splitlines()
    assert warning.startswith("warning: ") and "service.scale_interval" in warning


def test_check_lists_every_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = doc()
    d["pools"][0]["threads"] = "many"
    d["service"]["port"] = -1
    path = write(tmp_path / "config.yaml", d)
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}: service.port: must be an integer 0..65535, got -1",
        f"{path}: pools[0].threads: must be an integer 0..1024, got 'many'",
    ]


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2 and "serve" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    (script,) = metadata.entry_points(group="console_scripts", name="threadpool")
    assert script.load() is main


def test_check_help_says_the_configuration_is_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert info.value.code == 0
    assert "imports and runs its handlers' modules" in out
    assert "The configuration is code" in out and "never by the user the service runs as" in out


def test_example_config_prints_the_shipped_config_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example-config"]) == 0
    assert capsys.readouterr().out == (REPO / "config.yaml").read_text()


def test_check_warns_when_others_can_write_the_file_or_its_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "etc"
    directory.mkdir()
    path = write(directory / "config.yaml", doc())
    path.chmod(0o664)
    directory.chmod(0o777)
    try:
        assert main(["check", "--config", str(path)]) == 0  # a warning, not an error
        err = capsys.readouterr().err.splitlines()
    finally:
        directory.chmod(0o755)
    assert err == [
        f"warning: {path}: the file is writable by its group (mode 0664): the configuration "
        "is code - whoever can change it runs code in the service; make it writable by its "
        "owner only",
        f"warning: {path}: its directory is writable by its group and anyone (mode 0777): the "
        "configuration is code - whoever can change it runs code in the service; make it "
        "writable by its owner only",
    ]


def test_a_sticky_directory_like_tmp_is_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o1777)
    path = write(directory / "config.yaml", doc())
    path.chmod(0o644)
    assert main(["check", "--config", str(path)]) == 0
    assert capsys.readouterr().err == ""
