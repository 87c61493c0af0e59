from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from booking_service.actions.payments import (
    PaymentOutcome,
    PaymentResult,
    payment_create,
    payment_resume,
)
from booking_service.api.common import actor_of, id_field, not_found, path_id
from booking_service.payments.models import Payment
from booking_service.payments.selectors import payment_get, payment_list
from servicekit.clients import client_address
from servicekit.fields import QuerySerializer, TextField
from servicekit.idempotency.views import IdempotentMixin
from servicekit.openapi import link, links, problems
from servicekit.pagination import PageNumberPagination
from servicekit.problems import Problem
from servicekit.ratelimits import rate_limit_all


class PaymentOutputSerializer(serializers.ModelSerializer[Payment]):
    booking = serializers.IntegerField(source="booking_id")

    class Meta:
        model = Payment
        fields = [
            "id",
            "booking",
            "user_id",
            "amount",
            "currency",
            "status",
            "provider",
            "provider_reference",
            "failure_reason",
            "retryable",
            "created_at",
            "updated_at",
            "refunded_at",
        ]
        read_only_fields = fields


class PaymentListCreateApi(IdempotentMixin, APIView):
    idempotency_scope = "payments.create"
    # The provider is called between two transactions: the pending payment commits with the
    # key's recovery point, and a retry that finds it resumes from that payment.
    idempotency_phases = True

    class InputSerializer(serializers.Serializer[Any]):
        booking = id_field()
        payment_token = TextField(max_length=255)
        amount = serializers.DecimalField(
            max_digits=12,
            decimal_places=2,
            min_value=0,
            max_value=settings.BOOKING_MAX_PRICE * 1000,
            required=False,
        )

    class FilterSerializer(QuerySerializer):
        booking = id_field(required=False)

    def check_throttles(self, request: Request) -> None:
        super().check_throttles(request)
        if request.method == "POST":
            # Counted before the work: card testing is many attempts, most of them declined.
            rate_limit_all(
                action="payment",
                keys={"address": client_address(request), "user": str(actor_of(request).id)},
            )

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OpenApiResponse(
                PaymentOutputSerializer, description="Paid: the booking is confirmed."
            ),
            202: OpenApiResponse(
                PaymentOutputSerializer,
                description="The provider's answer is unknown (a timeout, a network error, a "
                "provider error): the payment stays `pending` and the charge may have gone "
                "through. Do not pay again (a new payment of the booking is refused with 409 "
                "`payment-in-progress` meanwhile); poll `GET /api/payments/{id}/` (the "
                "`Location` header) until it is `success`, `failed` or `refunded`. The service "
                "asks the provider again with the same idempotency key, so it is charged at "
                "most once.",
            ),
        },
    )
    @problems(402, 404, 409, 422, 429)
    @links(
        GetPayment=link("api_payments_retrieve", parameters={"id": "$response.body#/id"}),
        GetPaidBooking=link("api_bookings_retrieve", parameters={"id": "$response.body#/booking"}),
    )
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = payment_create(
            booking_id=data["booking"],
            user_id=actor.id,
            payment_token=data["payment_token"],
            amount=data.get("amount"),
            on_created=lambda payment: self.idempotency_checkpoint({"payment": payment.pk}),
        )
        return _answer(result)

    def idempotent_resume(self, request: Request, recovery_point: Any) -> Response:
        return _answer(payment_resume(payment_id=recovery_point["payment"]))

    @extend_schema(
        parameters=[FilterSerializer], responses={200: PaymentOutputSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        actor = actor_of(request)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        payments = payment_list(actor=actor, booking_id=filters.validated_data.get("booking"))
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(payments, request, view=self)
        return paginator.get_paginated_response(PaymentOutputSerializer(page, many=True).data)


def _answer(result: PaymentResult) -> Response:
    body = PaymentOutputSerializer(result.payment).data
    if result.outcome == PaymentOutcome.PENDING:
        location = reverse("payment-detail", kwargs={"pk": result.payment.pk})
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})
    if result.outcome == PaymentOutcome.FAILED:
        raise Problem(
            "The payment was declined; the booking stays pending until its hold ends.",
            code="payment-failed",
            status_code=status.HTTP_402_PAYMENT_REQUIRED,
            extra={"payment": body},
        )
    if result.outcome == PaymentOutcome.REFUNDED:
        raise Problem(
            "The hold expired while the payment was processed; the charge was refunded.",
            code="hold-expired",
            status_code=status.HTTP_409_CONFLICT,
            extra={"payment": body},
        )
    return Response(body, status=status.HTTP_201_CREATED)


class PaymentDetailApi(APIView):
    @extend_schema(responses={200: PaymentOutputSerializer})
    def get(self, request: Request, pk: str) -> Response:
        payment = payment_get(payment_id=path_id(pk), actor=actor_of(request))
        if payment is None:
            raise not_found("payment")
        return Response(PaymentOutputSerializer(payment).data)
