"""What the engine learns about this provider without importing it (entry point
``gleitzeit.providers``: ollama): its manifest, its settings, what it gets in ``initialize``
(read by ``settings.Settings.load``)."""

from pathlib import Path

from gleitzeit_sdk.declaration import EngineValue, ProviderDeclaration, ProviderSetting, SettingKind

_OWN = (
    ProviderSetting("providers.ollama.endpoint", "http://localhost:11434", SettingKind.TEXT, "GLEITZEIT_OLLAMA_URL"),
    ProviderSetting("providers.ollama.api", "ollama", SettingKind.CHOICE, choices=("ollama", "openai")),
    ProviderSetting("providers.ollama.api_key", None, SettingKind.OPTIONAL_TEXT, "GLEITZEIT_OPENAI_API_KEY"),
    ProviderSetting("providers.ollama.max_in_flight", 1, SettingKind.COUNT),
    ProviderSetting("providers.ollama.connect_timeout", 5.0, SettingKind.POSITIVE_NUMBER,
                    help="seconds to reach the server"),
    ProviderSetting("providers.ollama.read_timeout", 600.0, SettingKind.POSITIVE_NUMBER,
                    help="seconds to wait for the next bytes"),
)
_MODELS = (
    ProviderSetting("default_models.chat", "llama3.2:latest", SettingKind.TEXT),
    ProviderSetting("default_models.vision", "llava:latest", SettingKind.TEXT),
    ProviderSetting("default_models.embedding", "nomic-embed-text:latest", SettingKind.TEXT),
)

PROVIDER = ProviderDeclaration(
    name="ollama",
    manifest=Path(__file__).with_name("manifest.yaml"),
    settings=_OWN + _MODELS,
    initialize={
        **{s.key.removeprefix("providers.ollama."): s.key for s in _OWN},
        **{s.key: s.key for s in _MODELS},
        "hidden": EngineValue.PRIVATE_PATHS,  # task files are never read from there
    },
)
