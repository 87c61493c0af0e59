"""The pages. Customers' pages are here; the organizer and door-staff pages come from
`web_service.organizer` (its own urls module), included when the app is installed."""

import importlib.util

from django.conf import settings
from django.urls import URLPattern, URLResolver, include, path

from servicekit.health import LiveApi, ReadyApi
from servicekit.urls import route
from web_service.views import accounts, bookings, events, notifications, resources

urlpatterns: list[URLPattern | URLResolver] = [
    route("health/live", LiveApi.as_view(), name="health-live"),
    route("health/ready", ReadyApi.as_view(), name="health-ready"),
    route("", events.event_list, name="event-list"),
    route("events/<int:event_id>", events.event_detail, name="event-detail"),
    route(
        "events/<int:event_id>/availability", events.event_availability, name="event-availability"
    ),
    route("events/<int:event_id>/hold", events.event_hold, name="event-hold"),
    route("checkout/<int:booking_id>", bookings.checkout, name="checkout"),
    route("checkout/<int:booking_id>/pay", bookings.pay, name="checkout-pay"),
    route("checkout/<int:booking_id>/state", bookings.hold_state, name="checkout-state"),
    route("bookings", bookings.booking_list, name="booking-list"),
    route("bookings/<int:booking_id>", bookings.booking_detail, name="booking-detail"),
    route("bookings/<int:booking_id>/change", bookings.booking_change, name="booking-change"),
    route("bookings/<int:booking_id>/cancel", bookings.booking_cancel, name="booking-cancel"),
    route("resources", resources.resource_list, name="resource-list"),
    route("resources/<int:resource_id>", resources.resource_detail, name="resource-detail"),
    route("resources/<int:resource_id>/book", resources.resource_book, name="resource-book"),
    route("notifications", notifications.inbox, name="notifications"),
    route("notifications/read-all", notifications.read_all, name="notifications-read-all"),
    route("register", accounts.register_page, name="register"),
    route("login", accounts.login_page, name="login"),
    route("logout", accounts.logout_page, name="logout"),
    route("profile", accounts.profile_page, name="profile"),
]

if settings.ORGANIZER_APP in settings.INSTALLED_APPS and importlib.util.find_spec(
    f"{settings.ORGANIZER_APP}.urls"
):
    urlpatterns.append(path("", include(f"{settings.ORGANIZER_APP}.urls")))
