"""JupyterLab as the README documents it: notebooks/*.py open as notebooks, figures render.

``make install`` writes Jupytext's default-viewer setting into the environment's Jupyter
config (``<env>/etc/jupyter/labconfig/default_setting_overrides.json``), which JupyterLab reads
once it is installed into the same environment (``.venv/bin/pip install jupyterlab``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PREFIX = Path(sys.prefix)
LABCONFIG = PREFIX / "etc" / "jupyter" / "labconfig" / "default_setting_overrides.json"
FIX = ("run `make install`, or: jupytext-config --settings-file "
       f"{LABCONFIG} set-default-viewer python markdown myst")


def test_python_files_open_as_notebooks():
    assert LABCONFIG.is_file(), FIX
    jupytext_config = Path(sys.executable).with_name("jupytext-config")
    out = subprocess.run([str(jupytext_config), "--settings-file", str(LABCONFIG), "list-default-viewer"],
                         capture_output=True, text=True, check=True).stdout
    assert "python: Jupytext Notebook" in out, FIX
    viewers = json.loads(LABCONFIG.read_text())["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["python"] == "Jupytext Notebook"


def test_the_setting_is_where_jupyterlab_looks():
    from jupyter_core.paths import jupyter_config_path

    folders = [Path(p).resolve() for p in jupyter_config_path()]
    assert LABCONFIG.parent.parent.resolve() in folders, "JupyterLab reads labconfig/ of these folders"


@pytest.mark.parametrize("extension", ["jupyterlab-jupytext", "jupyterlab-plotly", "@jupyter-widgets/jupyterlab-manager"])
def test_lab_extensions_ship_with_the_environment(extension):
    """Jupytext's notebook view, plotly's renderer (viz.PlotlyFigure sends its mimetype) and
    the widgets manager (tqdm bars) come with the packages; JupyterLab needs no build."""
    assert (PREFIX / "share" / "jupyter" / "labextensions" / extension / "package.json").is_file()


def test_jupytext_contents_manager_is_enabled():
    conf = PREFIX / "etc" / "jupyter" / "jupyter_server_config.d" / "jupytext.json"
    assert json.loads(conf.read_text())["ServerApp"]["jpserver_extensions"]["jupyterlab_jupytext"] is True
