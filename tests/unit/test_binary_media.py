"""How the REST API's binaryMediaTypes decide, as on API Gateway, whether a Lambda proxy event
carries the request body base64 and whether a base64 result is decoded for the client."""

from __future__ import annotations

import pytest

from data_plane.binary_media import matches, request_is_binary, response_is_decoded

TEMPLATE = ["*/*"]
NARROW = ["image/*", "application/octet-stream"]


@pytest.mark.parametrize(
    ("value", "types", "matched"),
    [
        ("image/png", NARROW, True),
        ("IMAGE/PNG; q=0.9", NARROW, True),
        ("application/octet-stream", NARROW, True),
        ("application/json", NARROW, False),
        ("text/html", TEMPLATE, True),
        ("*/*", NARROW, False),  # a client's wildcard is not an entry's type
        ("*/*", TEMPLATE, True),
        ("image/png", [], False),
        ("application/vnd.api+json", ["application/*"], True),
    ],
)
def test_media_type_matching(value, types, matched):
    assert matches(value, types) is matched


@pytest.mark.parametrize(
    ("headers", "types", "binary"),
    [
        ([("Content-Type", "image/png")], NARROW, True),
        ([("content-type", "text/plain; charset=utf-8")], NARROW, False),
        ([], NARROW, False),  # no Content-Type counts as application/json
        ([], TEMPLATE, True),
        ([("Content-Type", "application/json")], TEMPLATE, True),
    ],
)
def test_request_body_goes_base64_when_its_content_type_is_listed(headers, types, binary):
    assert request_is_binary(headers, types) is binary


@pytest.mark.parametrize(
    ("accept", "types", "decoded"),
    [
        ("image/png", NARROW, True),
        ("image/webp,image/*,*/*;q=0.8", NARROW, True),
        ("application/json, image/png", NARROW, False),  # only the first type counts
        ("text/html,application/xhtml+xml,image/png", TEMPLATE, True),
        ("*/*", NARROW, False),
        (None, NARROW, False),  # no Accept counts as */*, which only */* covers
        (None, TEMPLATE, True),
    ],
)
def test_base64_result_is_decoded_when_the_first_accepted_type_is_listed(accept, types, decoded):
    headers = [] if accept is None else [("Accept", accept)]
    assert response_is_decoded(headers, types) is decoded
