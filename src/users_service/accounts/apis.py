from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from servicekit.auth import Principal
from servicekit.clients import client_address
from servicekit.fields import EmailField, QuerySerializer, StringField, TextField
from servicekit.openapi import link, links, problems
from servicekit.pagination import PageNumberPagination
from servicekit.permissions import IsAdmin, IsHuman
from servicekit.ratelimits import rate_limit
from users_service.accounts.models import SELF_SERVICE_ROLES, Role, User
from users_service.accounts.selectors import user_get_visible, user_list
from users_service.accounts.services import user_register
from users_service.actions import user_update
from users_service.tokens.services import session_id


class UserOutputSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "name", "email", "role", "created_at", "updated_at"]
        read_only_fields = fields


def principal_of(request: Request) -> Principal:
    user = request.user
    if not isinstance(user, Principal):  # permission classes run first; this is a bug guard
        raise NotAuthenticated
    return user


class RegisterApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer[Any]):
        name = TextField(max_length=150)
        email = EmailField(max_length=254)
        password = StringField(max_length=256, write_only=True, trim_whitespace=False)
        role = serializers.ChoiceField(
            choices=[(r.value, r.label) for r in SELF_SERVICE_ROLES], default=Role.CUSTOMER
        )

    @extend_schema(request=InputSerializer, responses={201: UserOutputSerializer})
    @problems(429)
    @links(
        LogIn=link(
            "api_users_login_create",
            body={"email": "$request.body#/email", "password": "$request.body#/password"},
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rate_limit(action="register", scope="address", key=client_address(request))
        user = user_register(**serializer.validated_data)
        return Response(UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class MeApi(APIView):
    permission_classes = [IsHuman]

    @extend_schema(responses=UserOutputSerializer)
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        user = user_get_visible(actor=principal, user_id=principal.id)
        return Response(UserOutputSerializer(user).data)


class UserDetailApi(APIView):
    permission_classes = [IsHuman]

    class InputSerializer(serializers.Serializer[Any]):
        name = TextField(max_length=150)
        email = EmailField(max_length=254)
        role = serializers.ChoiceField(choices=Role.choices, required=False)
        password = StringField(
            max_length=256, write_only=True, required=False, trim_whitespace=False
        )
        current_password = StringField(
            max_length=256,
            write_only=True,
            required=False,
            trim_whitespace=False,
            help_text="Needed to change the password, and to change the email of one's own "
            "account. Either change ends every other session of the account.",
        )

    @extend_schema(responses=UserOutputSerializer)
    def get(self, request: Request, pk: str) -> Response:
        user = user_get_visible(actor=principal_of(request), user_id=pk)
        return Response(UserOutputSerializer(user).data)

    @extend_schema(request=InputSerializer, responses=UserOutputSerializer)
    @problems(409, 429)
    def put(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(request=InputSerializer, responses=UserOutputSerializer)
    @problems(409, 429)
    def patch(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=True)

    def _update(self, request: Request, pk: str, *, partial: bool) -> Response:
        principal = principal_of(request)
        user = user_get_visible(actor=principal, user_id=pk)
        serializer = self.InputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        user = user_update(
            user=user,
            actor_is_admin=principal.is_admin,
            acting_on_self=principal.id == str(user.id),
            data=serializer.validated_data,
            session=session_id(principal),
        )
        return Response(UserOutputSerializer(user).data)


class UserListApi(APIView):
    permission_classes = [IsAdmin]

    class FilterSerializer(QuerySerializer):
        role = serializers.ChoiceField(choices=Role.choices, required=False)
        search = TextField(max_length=254, required=False)

    @extend_schema(parameters=[FilterSerializer], responses=UserOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(user_list(**filters.validated_data), request, view=self)
        return paginator.get_paginated_response(UserOutputSerializer(page, many=True).data)
