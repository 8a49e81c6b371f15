"""What the engine learns about this provider without importing it (entry point
``gleitzeit.providers``: python): its manifest, its settings, what it gets in ``initialize``."""

from pathlib import Path

from gleitzeit_sdk.declaration import EngineValue, ProviderDeclaration, ProviderSetting, SettingKind

PROVIDER = ProviderDeclaration(
    name="python",
    manifest=Path(__file__).with_name("manifest.yaml"),
    settings=(
        ProviderSetting("sandbox.require", "best", SettingKind.CHOICE, "GLEITZEIT_SANDBOX_REQUIRE",
                        choices=("best", "strict")),
        ProviderSetting("sandbox.python", None, SettingKind.OPTIONAL_TEXT, "GLEITZEIT_SANDBOX_PYTHON",
                        "interpreter python tasks run in (default: gleitzeit's own)"),
    ),
    initialize={
        "sandbox.require": "sandbox.require",
        "sandbox.python": "sandbox.python",
        "sandbox.state_dir": EngineValue.STATE_DIR,
        "sandbox.hidden": EngineValue.PRIVATE_PATHS,
        # the engine's setting (it is also the cap on a workflow's sandbox.disk_mb)
        "sandbox.max_disk_mb": "sandbox.max_disk_mb",
    },
)
