from __future__ import annotations

from typing import Any

from rest_framework import pagination
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
