"""What every service's `__main__`, `wsgi` and `asgi` modules do, given the service's package:
those modules stay two-line stubs because Django and gunicorn look them up by name."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler


def _use_settings_of(package: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{package}.settings")


def manage(package: str) -> None:
    """`python -m <package> <command>`: Django's manage.py for that service."""
    from django.core.management import execute_from_command_line

    _use_settings_of(package)
    execute_from_command_line(sys.argv)


def wsgi_application(package: str) -> WSGIHandler:
    from django.core.wsgi import get_wsgi_application

    _use_settings_of(package)
    return get_wsgi_application()


def asgi_application(package: str) -> ASGIHandler:
    from django.core.asgi import get_asgi_application

    _use_settings_of(package)
    return get_asgi_application()
