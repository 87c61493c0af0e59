"""Settings for mypy's Django plugin only: the apps of every service together, so one mypy
run checks the whole repository (app labels are unique across services). Never used to run
anything."""

import importlib
import os

os.environ.setdefault("SECRET_KEY", "typecheck-only")
os.environ.setdefault("DATABASE_URL", "postgresql://localhost/typecheck")

from devstack.services import available_services
from servicekit.base_settings import *  # noqa: F403
from servicekit.conf import database_from_env

INSTALLED_APPS: list[str] = []
for _service in available_services():
    _module = importlib.import_module(_service.settings_module)
    INSTALLED_APPS += [app for app in _module.INSTALLED_APPS if app not in INSTALLED_APPS]
    if hasattr(_module, "AUTH_USER_MODEL"):
        AUTH_USER_MODEL = _module.AUTH_USER_MODEL

DATABASES = {"default": database_from_env()}
SERVICE_NAME = "typecheck"
ROOT_URLCONF = "devstack.typecheck_urls"
