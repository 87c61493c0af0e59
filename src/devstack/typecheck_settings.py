"""Settings for mypy's Django plugin only: the settings of every service together, so one
mypy run checks the whole repository (app labels are unique across services). Never used to
run anything."""

import importlib
import os
from typing import Any

os.environ.setdefault("SECRET_KEY", "typecheck-only")
os.environ.setdefault("DATABASE_URL", "postgresql://localhost/typecheck")

from devstack.services import available_services
from servicekit.base_settings import *  # noqa: F403

_apps: list[str] = []
_extra: dict[str, Any] = {}
for _service in available_services():
    _module = importlib.import_module(_service.settings_module)
    _apps += [app for app in _module.INSTALLED_APPS if app not in _apps]
    # Service-specific settings (BOOKING_HOLD_SECONDS & co.), found by the plugin at runtime.
    _extra.update({k: v for k, v in vars(_module).items() if k.isupper() and k not in _extra})
globals().update(_extra)

INSTALLED_APPS = _apps
SERVICE_NAME = "typecheck"
ROOT_URLCONF = "devstack.typecheck_urls"
