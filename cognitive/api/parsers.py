"""The JSON body parser every API view uses: DRF's, plus the limits of `cognitive.json_limits`.

Checked once here rather than per field, so run inputs, batch inputs, pipeline constants,
variables, dataset imports and feedback are all covered, and any field added later is too.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from cognitive.json_limits import check_json


class CheckedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # Python's own parser gives up around 1,000 levels, far above the bound checked below.
            raise ParseError("JSON parse error - the body is nested too deeply") from None
        return check_json(data)
