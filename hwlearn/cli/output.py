"""Printing JSON documents: strict JSON only, never NaN or Infinity."""

from __future__ import annotations

import json

from hwlearn.errors import SolverError


def print_json(doc: dict, what: str) -> None:
    """Print ``doc`` as JSON. A NaN or infinite number is not JSON: a document that holds one
    reports a failed computation, so it is an error (exit 2), never a silently broken output."""
    try:
        text = json.dumps(doc, indent=2, allow_nan=False)
    except ValueError:
        raise SolverError(f"{what}: the result holds NaN or infinite values, so the circuit is numerically "
                          "singular (resistances spanning too many orders of magnitude?); nothing printed") from None
    print(text)
