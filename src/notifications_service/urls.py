from notifications_service.notifications import urls as notification_urls
from notifications_service.webhooks import urls as webhook_urls
from servicekit.urls import common_urlpatterns

urlpatterns = [
    *common_urlpatterns(),
    *notification_urls.urlpatterns,
    *webhook_urls.urlpatterns,
]

handler400 = "servicekit.problems.handler400"
handler403 = "servicekit.problems.handler403"
handler404 = "servicekit.problems.handler404"
handler500 = "servicekit.problems.handler500"
