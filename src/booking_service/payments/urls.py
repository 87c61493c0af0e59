from booking_service.payments.apis import PaymentDetailApi, PaymentListCreateApi
from servicekit.urls import route

urlpatterns = [
    route("api/payments", PaymentListCreateApi.as_view(), name="payment-list"),
    route("api/payments/<int:pk>", PaymentDetailApi.as_view(), name="payment-detail"),
]
