from __future__ import annotations

from typing import Any

from django.core.paginator import InvalidPage, Page
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from servicekit.fields import BIGINT_MAX, IntegerField, QuerySerializer


class PageNumberPagination(pagination.PageNumberPagination):
    """`{count, next, previous, results}` with `?page=` and `?page_size=` (at most 100).

    A `page` or `page_size` that is not an integer in range is a 400 naming it (DRF would
    quietly use the default size, or clamp it); a page past the last one is a 404.
    """

    page_size_query_param = "page_size"
    max_page_size = 100

    class PageParams(QuerySerializer):
        page = IntegerField(min_value=1, max_value=BIGINT_MAX, required=False)
        page_size = IntegerField(min_value=1, max_value=100, required=False)

    def paginate_queryset(
        self, queryset: Any, request: Request, view: Any = None
    ) -> list[Any] | None:
        params = self.PageParams.parse(request.query_params)
        self._page_size: int | None = params.get("page_size")
        return super().paginate_queryset(queryset, request, view)

    def paginate_counted(self, rows: Any, request: Request) -> list[Any]:
        """`paginate_queryset` in one statement: `rows` gives `(item, total)` pairs, `total`
        being the whole list's `count(*) OVER ()`, so a page and the count come from one
        query instead of two. The answers are `paginate_queryset`'s: a page past the last
        one is a 404, the first page of an empty list is empty."""
        params = self.PageParams.parse(request.query_params)
        self.request = request
        size = int(params.get("page_size") or self.page_size or 1)
        number = int(params.get("page") or 1)
        if number * size > BIGINT_MAX:  # past any list, and past what OFFSET takes
            raise NotFound(self.invalid_page_message)
        fetched = list(rows[(number - 1) * size : number * size])
        paginator = self.django_paginator_class([], size)
        paginator.__dict__["count"] = fetched[0][1] if fetched else 0  # its cached_property
        try:
            paginator.validate_number(number if fetched else 1 if number == 1 else 0)
        except InvalidPage as exc:
            raise NotFound(self.invalid_page_message) from exc
        self.page = Page([item for item, _ in fetched], number, paginator)
        return list(self.page.object_list)

    def get_page_size(self, request: Request) -> int | None:
        return getattr(self, "_page_size", None) or self.page_size

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.page_query_param: {"minimum": 1, "maximum": BIGINT_MAX},
            self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size},
        }
        for parameter in parameters:
            parameter["schema"] = {**parameter["schema"], **bounds.get(parameter["name"], {})}
        return parameters
