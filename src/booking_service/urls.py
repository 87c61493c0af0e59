from booking_service.bookings import urls as booking_urls
from booking_service.events import urls as event_urls
from booking_service.payments import urls as payment_urls
from booking_service.resources import urls as resource_urls
from servicekit.urls import common_urlpatterns

urlpatterns = [
    *common_urlpatterns(),
    *event_urls.urlpatterns,
    *booking_urls.urlpatterns,
    *payment_urls.urlpatterns,
    *resource_urls.urlpatterns,
]

handler400 = "servicekit.problems.handler400"
handler403 = "servicekit.problems.handler403"
handler404 = "servicekit.problems.handler404"
handler500 = "servicekit.problems.handler500"
