"""`python -m web_service <command>`: Django's manage.py for this service."""

from servicekit.entrypoints import manage

if __name__ == "__main__":
    manage("web_service")
