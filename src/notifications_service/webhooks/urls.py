from notifications_service.webhooks import apis
from servicekit.urls import route

urlpatterns = [
    route("api/webhooks", apis.WebhookListCreateApi.as_view(), name="webhook-list"),
    route("api/webhooks/<int:pk>", apis.WebhookDetailApi.as_view(), name="webhook-detail"),
    route(
        "api/webhooks/<int:pk>/rotate-secret",
        apis.WebhookRotateSecretApi.as_view(),
        name="webhook-rotate-secret",
    ),
    route(
        "api/webhooks/<int:pk>/deliveries",
        apis.WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
]
