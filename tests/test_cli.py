"""The facelib command: every subcommand is wired, and only its module is imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from facelib import cli


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert command in capsys.readouterr().out


def test_top_level_help_lists_commands_without_heavy_imports():
    code = (
        "import sys\nfrom facelib import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'LIGHT')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for command in cli.COMMANDS:
        assert command in out
    assert out.strip().endswith("LIGHT")


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["nonsense"])
    assert exc.value.code == 2
    assert "nonsense" in capsys.readouterr().err


def test_python_dash_m_facelib_is_the_same_command():
    out = subprocess.run([sys.executable, "-m", "facelib", "--help"], capture_output=True, text=True, check=True).stdout
    for command in cli.COMMANDS:
        assert command in out
    bad = subprocess.run([sys.executable, "-m", "facelib", "nonsense"], capture_output=True, text=True)
    assert bad.returncode == 2 and "nonsense" in bad.stderr


def test_key_values_reads_yaml_values_and_names_the_option_of_a_bad_item():
    assert cli.key_values(["epochs=2", "lr = 1e-3", "crop=[1, 2]", "name=a=b", "p=gpu"], "--set") == {
        "epochs": 2, "lr": 1e-3, "crop": [1, 2], "name": "a=b", "p": "gpu"}
    assert cli.key_values(None, "--set") == {}
    with pytest.raises(ValueError, match=r"--set expects KEY=VALUE, got 'epochs'"):
        cli.key_values(["epochs"], "--set")
    with pytest.raises(KeyError, match="--cluster-set"):
        cli.key_values(["=3"], "--cluster-set", KeyError)


def test_every_command_reports_a_malformed_set_item(capsys):
    from facelib import launch
    with pytest.raises(launch.LaunchError, match="--cluster-set"):
        launch._parse_sets(["partition"])
    for command in (["finetune", "au"], ["pretrain", "--out", "unused"]):
        assert cli.main([*command, "--set", "epochs"]) == 2
        err = capsys.readouterr().err
        assert err == f"facelib {command[0]}: error: --set expects KEY=VALUE, got 'epochs'\n"
