from notifications_service.notifications import apis
from servicekit.urls import route

urlpatterns = [
    route("api/notification", apis.NotificationSendApi.as_view(), name="notification-send"),
    route("api/notifications", apis.NotificationListApi.as_view(), name="notification-list"),
    route(
        "api/notifications/read-all",
        apis.NotificationReadAllApi.as_view(),
        name="notification-read-all",
    ),
    route(
        "api/notifications/<int:pk>",
        apis.NotificationDetailApi.as_view(),
        name="notification-detail",
    ),
    route(
        "api/notifications/<int:pk>/read",
        apis.NotificationReadApi.as_view(),
        name="notification-read",
    ),
]
