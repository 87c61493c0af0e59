"""The organizer's pages under /organizer/, the door's scanner under /scan/."""

import functools
import re
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

from servicekit.urls import route as untyped_route
from web_service.organizer import events, reports, resources, scanner, staff, webhooks


def route(pattern: str, view: Callable[..., HttpResponse], name: str) -> URLPattern:
    """servicekit's route, its `<int:...>` parts handed to the view as ints (not the
    strings a regex pattern matches), as the views' signatures say."""
    ids = re.findall(r"<int:(\w+)>", pattern)

    @functools.wraps(view)
    def typed(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        for key in ids:
            kwargs[key] = int(kwargs[key])
        return view(request, **kwargs)

    return untyped_route(pattern, typed, name=name)


urlpatterns: list[URLPattern] = [
    route("organizer", events.home, name="organizer-home"),
    route("organizer/events/new", events.event_new, name="organizer-event-new"),
    route("organizer/events/<int:event_id>", reports.dashboard, name="organizer-dashboard"),
    route("organizer/events/<int:event_id>/sales", reports.sales_numbers, name="organizer-sales"),
    route("organizer/events/<int:event_id>/edit", events.event_edit, name="organizer-event-edit"),
    route(
        "organizer/events/<int:event_id>/cancel",
        events.event_cancel,
        name="organizer-event-cancel",
    ),
    route(
        "organizer/events/<int:event_id>/attendees",
        reports.attendees,
        name="organizer-attendees",
    ),
    route(
        "organizer/events/<int:event_id>/attendees.csv",
        reports.attendees_csv,
        name="organizer-attendees-csv",
    ),
    route("organizer/events/<int:event_id>/staff", staff.staff, name="organizer-staff"),
    route(
        "organizer/events/<int:event_id>/staff/<str:user_id>/remove",
        staff.staff_remove,
        name="organizer-staff-remove",
    ),
    route("organizer/resources/new", resources.resource_new, name="organizer-resource-new"),
    route(
        "organizer/resources/<int:resource_id>/edit",
        resources.resource_edit,
        name="organizer-resource-edit",
    ),
    route(
        "organizer/resources/<int:resource_id>/retire",
        resources.resource_retire,
        name="organizer-resource-retire",
    ),
    route("organizer/webhooks", webhooks.webhook_list, name="organizer-webhooks"),
    route(
        "organizer/webhooks/<int:endpoint_id>", webhooks.webhook_detail, name="organizer-webhook"
    ),
    route(
        "organizer/webhooks/<int:endpoint_id>/rotate",
        webhooks.webhook_rotate,
        name="organizer-webhook-rotate",
    ),
    route(
        "organizer/webhooks/<int:endpoint_id>/delete",
        webhooks.webhook_delete,
        name="organizer-webhook-delete",
    ),
    route("scan", scanner.scan_home, name="scan-home"),
    route("scan/<int:event_id>", scanner.scanner, name="scanner"),
    route("scan/<int:event_id>/count", scanner.scan_count, name="scan-count"),
    route("scan/<int:event_id>/checkin", scanner.scan_checkin, name="scan-checkin"),
]
