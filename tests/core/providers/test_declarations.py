"""Installed provider packages introduce themselves through the ``gleitzeit.providers`` entry
point group (gleitzeit_sdk/declaration.py): their manifest, their settings, what they get in
``initialize``. The built-in providers go the same way, so nothing in the engine names them.

Judged through the real `gleitzeit`: third-party packages made visible with PYTHONPATH, and
the project itself installed with a plain (not editable) ``pip install`` into a fresh venv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import yaml

from tests.helpers.cli import REPO, gz

ACME = """
from pathlib import Path

from gleitzeit_sdk.declaration import EngineValue, ProviderDeclaration, ProviderSetting, SettingKind

PROVIDER = ProviderDeclaration(
    name="acme",
    manifest=Path(__file__).with_name("manifest.yaml"),
    settings=(ProviderSetting("providers.acme.greeting", "hello", SettingKind.TEXT, "GLEITZEIT_ACME_GREETING",
                              "what acme/greet says"),
              ProviderSetting("providers.acme.repeat", 1, SettingKind.COUNT)),
    initialize={"greeting": "providers.acme.greeting", "shape.repeat": "providers.acme.repeat",
                "engine.max_concurrent": "execution.max_concurrent_tasks", "state": EngineValue.STATE_DIR},
)
"""

#: A provider whose one method answers with what it received in ``initialize``.
ECHO_CONFIG = """
from gleitzeit_sdk import Provider, RequestContext

provider = Provider("{name}", "1.0.0")


@provider.method("{name}/config")
async def config(ctx: RequestContext) -> dict:
    return dict(ctx.config)


if __name__ == "__main__":
    provider.run()
"""


def provider_package(site: Path, name: str, declaration: str) -> dict[str, str]:
    """An installed distribution ``<name>-provider`` whose entry point names ``declaration``
    (the module text), in a folder on PYTHONPATH; the environment that makes it visible."""
    pkg = site / f"{name}_provider"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "declaration.py").write_text(declaration)
    (pkg / "provider.py").write_text(ECHO_CONFIG.format(name=name))
    (pkg / "manifest.yaml").write_text(
        f'name: {name}\nversion: "1.0.0"\ncommand: "{{python}}"\nargs: ["provider.py"]\nprotocols: [{name}/v1]\n')
    info = site / f"{name}_provider-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-provider\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[gleitzeit.providers]\n{name} = {name}_provider.declaration:PROVIDER\n")
    return {"PYTHONPATH": str(site)}


def config_task(tmp: Path, name: str) -> Path:
    wf = tmp / f"{name}.yaml"
    wf.write_text(f"name: {name}\ntasks:\n  - name: Config\n    method: {name}/config\n")
    return wf


def test_an_installed_package_declares_a_provider_its_settings_and_what_it_is_given(tmp_path: Path):
    home = tmp_path / "home"
    env = provider_package(tmp_path / "site", "acme", ACME)
    shown = gz(home, "config", "--json", GLEITZEIT_ACME_GREETING="hi", **env).json()["settings"]
    assert shown["providers.acme.greeting"] == {"value": "hi", "source": "env GLEITZEIT_ACME_GREETING"}
    assert shown["providers.acme.repeat"] == {"value": 1, "source": "default"}
    assert shown["providers.acme.enabled"] == {"value": True, "source": "default"}
    bad = gz(home, "config", "set", "providers.acme.repeat", "0", **env)  # a COUNT is ≥ 1
    assert bad.code == 2 and "providers.acme.repeat" in bad.err
    assert gz(home, "config", "set", "providers.acme.repeat", "3", **env).code == 0
    assert gz(home, "config", "get", "providers.acme.repeat").code == 2  # without the package: no such key

    wf = config_task(tmp_path, "acme")
    ran = gz(home, "--backend", "memory", "run", str(wf), "--json", GLEITZEIT_ACME_GREETING="hi", **env)
    assert ran.code == 0, ran.err
    assert ran.json()["tasks"]["Config"]["result"] == {
        "greeting": "hi", "shape": {"repeat": 3}, "engine": {"max_concurrent": 5}, "state": str(home / "acme-provider")}

    with open(home / "config.yaml", "a", encoding="utf-8") as f:
        f.write(yaml.safe_dump({"providers": {"acme": {"enabled": False}}}))
    off = gz(home, "--backend", "memory", "run", str(wf), **env)
    assert off.code == 2 and "acme/v1" in off.err


def test_a_broken_declaration_is_one_warning_and_the_others_still_work(tmp_path: Path):
    home = tmp_path / "home"
    env = provider_package(tmp_path / "site", "broken", "raise ImportError('no module named acme_sdk')\n")
    listed = gz(home, "provider", "list", "--json", **env)
    assert listed.code == 0, listed.err
    assert {"python", "ollama"} <= {p["name"] for p in listed.json()}
    assert "broken" in listed.err and "no module named acme_sdk" in listed.err and "Traceback" not in listed.err
    ran = gz(home, "--backend", "memory", "exec", "result = 6 * 7", **env)
    assert ran.code == 0 and "42" in ran.out, ran.err


def test_the_sdk_readme_declaration_works_as_printed(tmp_path: Path):
    readme = (REPO / "sdk" / "README.md").read_text()
    [block] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "ProviderDeclaration(" in b]
    home = tmp_path / "home"
    env = provider_package(tmp_path / "site", "wordy", block)
    shown = gz(home, "config", "get", "providers.wordy.language", "--json", **env).json()
    assert shown == {"key": "providers.wordy.language", "value": "en", "source": "default"}
    assert gz(home, "config", "set", "providers.wordy.language", "fr", **env).code == 2  # not a choice
    ran = gz(home, "--backend", "memory", "run", str(config_task(tmp_path, "wordy")), "--json",
             GLEITZEIT_WORDY_LANGUAGE="de", **env)
    assert ran.code == 0, ran.err
    assert ran.json()["tasks"]["Config"]["result"] == {"language": "de", "state_dir": str(home / "wordy-provider")}


def test_a_plain_pip_install_brings_the_built_in_providers(tmp_path: Path):
    """Not editable: a wheel built from a copy of the source, installed into a new venv
    (its dependencies are this interpreter's, through a .pth file)."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # offline with this interpreter's setuptools and wheel when it has both; else pip fetches them
    have = all(importlib.util.find_spec(m) for m in ("setuptools", "wheel"))
    offline = ["--no-build-isolation", "--no-index"] if have else []
    subprocess.run([*pip, "wheel", "--no-deps", *offline, "-w", str(tmp_path / "dist"), str(src)],
                   check=True, timeout=600, capture_output=True)
    wheel = next((tmp_path / "dist").glob("gleitzeit-*.whl"))
    venv, python = tmp_path / "v", str(tmp_path / "v" / "bin" / "python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    target = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    (target / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([*pip, "--python", python, "install", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=600, capture_output=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLEITZEIT_", "PYTHON"))}
    listed = subprocess.run([str(venv / "bin" / "gleitzeit"), "provider", "list", "--json"], cwd=tmp_path,
                            env={**env, "GLEITZEIT_HOME": str(tmp_path / "home")}, capture_output=True, text=True,
                            timeout=300)
    providers = {p["name"]: p for p in json.loads(listed.stdout)}
    assert {"python", "ollama"} <= set(providers), listed.stderr
    for name in ("python", "ollama"):
        assert Path(providers[name]["manifest"]).is_relative_to(target), providers[name]
    assert providers["python"]["state"] == "ok", providers["python"]
    code = textwrap.dedent("""
        import json, sys
        import gleitzeit_core.config as c
        print(json.dumps([sorted(k for k in c.SETTINGS if k.startswith(("providers.", "sandbox.", "default_models."))),
                          sorted(m for m in sys.modules if m.startswith(("provider_python.", "provider_ollama.")))]))
    """)
    keys, loaded = json.loads(subprocess.run([python, "-c", code], cwd=tmp_path, env=env, check=True,
                                             capture_output=True, text=True).stdout)
    assert {"providers.python.enabled", "providers.ollama.endpoint", "sandbox.require", "default_models.chat"} <= set(keys)
    assert loaded == ["provider_ollama.declaration", "provider_python.declaration"]  # the declarations, nothing else
