"""The two errors bad configuration raises; every message names the key and the fix."""


class ConfigError(ValueError):
    """A config value is unknown, missing or of the wrong type; the message names key and fix."""


class MisconfigurationError(ConfigError):
    """The config asks for something the scheduler cannot do; the message says what to change."""
