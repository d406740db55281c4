"""Where a matched request is sent: rendering an HTTP integration's URI."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from data_plane.integration_uri import IntegrationUriError, render_upstream_url

PROXY_MAPPING = {"integration.request.path.proxy": "method.request.path.proxy"}


def render(
    template: str,
    *,
    variables: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    mapping: dict[str, str] | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> str:
    return render_upstream_url(
        template,
        stage_variables=variables if variables is not None else {"svc": "127.0.0.1:9000"},
        path_parameters=params or {},
        request_parameters=mapping if mapping is not None else PROXY_MAPPING,
        raw_query=query,
        headers=CIMultiDict(headers or {}),
    ).url


@pytest.mark.parametrize(
    ("template", "params", "query", "expected"),
    [
        (
            "http://${stageVariables.svc}/svc/{proxy}",
            {"proxy": "a/b"},
            "",
            "http://127.0.0.1:9000/svc/a/b",
        ),
        (
            "https://${stageVariables.svc}/svc/{proxy}",
            {"proxy": "a b/c%d"},
            "",
            "https://127.0.0.1:9000/svc/a%20b/c%25d",
        ),
        (
            "http://${stageVariables.svc}/svc/{proxy}",
            {"proxy": "x"},
            "b=2&a=1&b=3&flag",
            "http://127.0.0.1:9000/svc/x?b=2&a=1&b=3&flag",
        ),
        (
            "http://${stageVariables.svc}/svc/{proxy}?static=1",
            {"proxy": "x"},
            "q=%20y",
            "http://127.0.0.1:9000/svc/x?static=1&q=%20y",
        ),
        ("http://${stageVariables.svc}/echo", {}, "", "http://127.0.0.1:9000/echo"),
    ],
)
def test_uri_is_filled_from_stage_variables_path_and_query(
    template: str, params: dict[str, str], query: str, expected: str
) -> None:
    assert render(template, params=params, query=query) == expected


def test_stage_variable_may_carry_a_base_path() -> None:
    url = render(
        "http://${stageVariables.orders}/orders/{id}",
        variables={"orders": "127.0.0.1:9001/v2"},
        params={"id": "42"},
        mapping={"integration.request.path.id": "method.request.path.id"},
    )

    assert url == "http://127.0.0.1:9001/v2/orders/42"


def test_path_values_can_come_from_query_header_stage_or_a_constant() -> None:
    url = render(
        "http://${stageVariables.svc}/{a}/{b}/{c}/{d}",
        variables={"svc": "127.0.0.1:9000", "tenant": "t1"},
        mapping={
            "integration.request.path.a": "method.request.querystring.region",
            "integration.request.path.b": "method.request.header.X-Tenant",
            "integration.request.path.c": "stageVariables.tenant",
            "integration.request.path.d": "'v1'",
        },
        query="region=eu&region=us",
        headers={"x-tenant": "acme"},
    )

    assert url == "http://127.0.0.1:9000/us/acme/t1/v1?region=eu&region=us"


@pytest.mark.parametrize(
    ("template", "variables", "message"),
    [
        ("http://${stageVariables.missing}/x", {"svc": "h"}, "stage variable 'missing'"),
        ("http://${stageVariables.svc}/x/{nothing}", {"svc": "h"}, "{nothing}"),
        ("ftp://${stageVariables.svc}/x", {"svc": "h"}, "not http(s)"),
        ("http://${stageVariables.svc}/x", {"svc": ""}, "no host"),
        ("http://${stageVariables.svc}/x", {"svc": "h:99999"}, "invalid integration URL"),
        ("http://${stageVariables.svc}/x", {"svc": "user:pw@h"}, "credentials"),
    ],
)
def test_unusable_uri_is_a_configuration_error(
    template: str, variables: dict[str, str], message: str
) -> None:
    with pytest.raises(IntegrationUriError) as raised:
        render(template, variables=variables, mapping={})

    assert message in str(raised.value)
