"""The roles of the image, `turnstile <role>`: the one contract the entry point, the compose
file, the chart and their checks share.

They come from the development stack's services (devstack.services), so a service or worker
added there is a role the deployments are checked for. The web service's pages are the
`web` role; an API service's server is `<service>-web`.
"""

from __future__ import annotations

from devstack.services import ALL_SERVICES, WEB_SERVICE, Service

# In the order `migrate all` runs their migrations: the web service's sessions last.
IMAGE_SERVICES: tuple[Service, ...] = (*ALL_SERVICES, WEB_SERVICE)


def web_role(service: Service) -> str:
    return "web" if service.name == WEB_SERVICE.name else f"{service.name}-web"


WEB_ROLES: tuple[str, ...] = tuple(web_role(service) for service in IMAGE_SERVICES)
WORKER_ROLES: tuple[str, ...] = tuple(
    f"{service.name}-{worker.name}" for service in IMAGE_SERVICES for worker in service.workers
)
MIGRATED: tuple[str, ...] = tuple(service.name for service in IMAGE_SERVICES)
