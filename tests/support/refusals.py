"""A refusal before anything is sent: code 2 naming the problem, no request to AWS."""

from __future__ import annotations

from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM


def assert_refused_before_sending(
    iam: LocalIAM, proxy: FaultProxy, parameters: dict[str, object], expected: str
) -> None:
    """The action answers code 2 naming the problem, and no request leaves for AWS."""
    from plugin import execute

    mark = proxy.mark()
    response = execute(
        {
            "parameters": {"user_name": "bob", **parameters},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )
    assert response["error_code"] == 2, response["error_message"]
    assert expected in response["error_message"]
    assert proxy.since(mark) == []
