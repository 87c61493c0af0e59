from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from servicekit.clients import client_address
from servicekit.fields import StringField, TextField
from servicekit.openapi import link, links, problems
from servicekit.permissions import IsHuman
from users_service.accounts.apis import UserOutputSerializer, principal_of
from users_service.tokens.selectors import jwks_document
from users_service.tokens.services import (
    TokenPair,
    login,
    refresh_families_revoke,
    refresh_family_revoke,
    refresh_rotate,
)
from users_service.tokens.throttling import rate_limit


class TokenPairOutputSerializer(serializers.Serializer[TokenPair]):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.SerializerMethodField()
    expires_in = serializers.IntegerField()
    user = UserOutputSerializer()

    def get_token_type(self, obj: TokenPair) -> str:
        return "Bearer"


class _PublicApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]


class LoginApi(_PublicApi):
    class InputSerializer(serializers.Serializer[Any]):
        email = TextField(max_length=254)
        password = StringField(max_length=256, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={200: TokenPairOutputSerializer})
    @problems(401, 429)
    @links(
        GetSelf=link("api_users_retrieve", parameters={"id": "$response.body#/user/id"}),
        Refresh=link("api_users_token_refresh_create", body={"refresh": "$response.body#/refresh"}),
        LogOut=link("api_users_logout_create", body={"refresh": "$response.body#/refresh"}),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = login(**serializer.validated_data, address=client_address(request))
        return Response(TokenPairOutputSerializer(pair).data)


class RefreshApi(_PublicApi):
    class InputSerializer(serializers.Serializer[Any]):
        refresh = TextField(max_length=128)

    @extend_schema(request=InputSerializer, responses={200: TokenPairOutputSerializer})
    @problems(401, 429)
    @links(
        RefreshAgain=link(
            "api_users_token_refresh_create", body={"refresh": "$response.body#/refresh"}
        ),
        LogOut=link("api_users_logout_create", body={"refresh": "$response.body#/refresh"}),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rate_limit(action="refresh", scope="address", key=client_address(request))
        pair = refresh_rotate(refresh=serializer.validated_data["refresh"])
        return Response(TokenPairOutputSerializer(pair).data)


class LogoutApi(_PublicApi):
    class InputSerializer(serializers.Serializer[Any]):
        refresh = TextField(max_length=128)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refresh_family_revoke(refresh=serializer.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllApi(APIView):
    """Log out everywhere: every session of the caller ends, this one included. Access
    tokens already issued stay valid until they expire (15 minutes at most)."""

    permission_classes = [IsHuman]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        refresh_families_revoke(user_id=principal_of(request).id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class JwksApi(_PublicApi):
    @extend_schema(
        responses=inline_serializer(
            "Jwks", {"keys": serializers.ListField(child=serializers.DictField())}
        )
    )
    def get(self, request: Request) -> Response:
        response = Response(jwks_document())
        response["Cache-Control"] = "public, max-age=300"
        return response
