"""DRF's JSON renderer, with orjson doing the encoding.

The output is DRF's, byte for byte: compact, UTF-8, and whatever orjson does not encode the
way DRF does (dates and times, decimals, lazy translations, integer keys) goes through
DRF's own encoder. Pre-encoded JSON (`orjson.Fragment`, a list page PostgreSQL built) goes
out as it is. A client asking for `indent` gets DRF's renderer itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_fallback = JSONEncoder().default


class JSONRenderer(renderers.JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", dict(renderer_context or {})):
            indented: bytes = super().render(data, accepted_media_type, renderer_context)
            return indented
        body: bytes = orjson.dumps(data, default=_fallback, option=_OPTIONS)
        return body
