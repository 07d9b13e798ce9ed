"""The IAM client an invocation calls through: no retries of its own, timeouts that fit the
invocation's budget, an endpoint that never carries a secret in clear. Clients are kept per
session, region, endpoint and timeouts, since making one costs more than the call itself.
And what every client the action makes keeps to (`guard`): no clear text, answers read up to
MAX_ANSWER_BYTES, sends within the invocation's time."""

from __future__ import annotations

import http.client
import ipaddress
import threading
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from botocore import exceptions as boto_errors
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.parsers import ResponseParserError
from urllib3 import exceptions as urllib3_errors

from plugin.contract.errors import ActionError, Category
from plugin.runtime.deadline import Deadline, bound_sends

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from botocore.session import Session
    from mypy_boto3_iam import IAMClient

USER_AGENT = "iam-create-access-key/0.1.0"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

# The largest answer read from an AWS endpoint: every answer the action reads (a key, a key
# list of two, an assumed role's credentials, a vault's or scheduler's receipt, an error) is a
# few KiB. An endpoint that sends more (an allowed endpoint someone else controls, a proxy's
# page) is not read further, so a call's memory does not grow with what an endpoint sends.
MAX_ANSWER_BYTES = 256 * 1024
_READ_BYTES = 16 * 1024
# And its headers (read by Python's http.client, which takes 100 lines of 64 KiB: 6.4 MB an
# answer, 4 GiB in serve under the ninth red team's 24 calls at once): 32 lines of 4 KiB, 128
# KiB, held by each worker of a call given up on while its endpoint drips them (the tenth red
# team's 31 lines of 8,000 bytes held serve at 230 MiB). AWS sends a handful of short ones.
MAX_HEADER_LINE_BYTES = 4 * 1024
MAX_HEADERS = 32

# Clients kept: each costs about 0.75 MiB (botocore builds its class, model and endpoint rules per
# client), so a caller sending new credentials on every call holds at most 24 MiB of them; a
# client not kept is made again (milliseconds), and its session with it only past MAX_SESSIONS.
MAX_CLIENTS = 32
_clients: dict[tuple[Session, str, str, float, float], IAMClient] = {}
_lock = threading.Lock()


def timeouts(deadline: Deadline) -> tuple[float, float]:
    """Socket timeouts (connect, read) that leave room in the budget to reconcile."""
    budget = deadline.seconds
    return min(CONNECT_TIMEOUT, max(0.5, budget / 4)), min(READ_TIMEOUT, max(0.5, budget / 3))


def iam_client(
    session: Session,
    signing_region: str,
    endpoint_url: str | None,
    deadline: Deadline,
    prepare: Sequence[Callable[[IAMClient], None]] = (),
) -> IAMClient:
    """An IAM client that signs for `signing_region` and never retries on its own.

    CreateAccessKey has no idempotency token: botocore's own retries (5 attempts in legacy mode)
    would turn a response lost after IAM acted into a second key. One attempt; the plugin decides
    itself what is safe to try again (see invocation/create.py).

    `prepare`: the operations' own hooks (the invocation's: raw bodies kept), registered once
    when the client is made; a kept client is not prepared again, so every caller passes the same.
    """
    connect, read = timeouts(deadline)
    key = (session, signing_region, endpoint_url or "", connect, read)  # sessions hash by identity
    with _lock:  # a botocore session is not safe to make clients from in two threads at once
        client = _clients.get(key)
        if client is None:
            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=connect,
                read_timeout=read,
                user_agent_extra=USER_AGENT,
            )
            client = cast(
                "IAMClient",
                session.create_client(
                    "iam", region_name=signing_region, endpoint_url=endpoint_url, config=config
                ),
            )
            guard(client)
            for hook in prepare:
                hook(client)
            _clients[key] = client
            if len(_clients) > MAX_CLIENTS:
                del _clients[next(iter(_clients))]  # the oldest
    return client


def forget() -> None:
    with _lock:
        _clients.clear()


def forget_session(session: Session) -> None:
    """Drop the clients kept for a session no longer kept: each would keep it alive (the ninth
    red team's new key on every call kept 128 sessions through their clients)."""
    with _lock:
        for key in [key for key in _clients if key[0] is session]:
            del _clients[key]


class AnswerTooLarge(ResponseParserError):
    """An endpoint's answer passed MAX_ANSWER_BYTES; the rest of it was not read. The endpoint
    may have acted on the request (like any answer that could not be read)."""

    def __init__(
        self, endpoint_url: str, why: str = f"was larger than {MAX_ANSWER_BYTES // 1024} KiB"
    ) -> None:
        super().__init__(f"the answer {why}")
        self.why = why  # "was larger than 256 KiB", "had more than 32 headers", ...
        self.kwargs = {"endpoint_url": endpoint_url}  # where botocore's own errors keep it


def guard(client: Any) -> None:
    """What every client the action makes keeps to: its endpoint never takes a secret in clear,
    its answers are read up to MAX_ANSWER_BYTES, and its sends keep to the invocation's time
    (serve)."""
    refuse_clear_text(client.meta.endpoint_url)
    limit_answers(client)
    bound_sends(client)  # after limit_answers: the reading is within the invocation's time


def limit_answers(client: Any) -> None:
    """Make this botocore client read at most MAX_ANSWER_BYTES of any answer's body and
    MAX_HEADERS lines of MAX_HEADER_LINE_BYTES of its headers (AnswerTooLarge beyond):
    botocore reads a whole body into memory, however large."""
    _limit_headers()
    sending = getattr(getattr(client, "_endpoint", None), "http_session", None)
    if sending is None or getattr(sending, "_iam_create_access_key_limited", False):
        return
    send = sending.send

    def limited(request: Any) -> Any:
        if request.stream_output:  # no operation the action calls streams; left as it is
            return send(request)
        request.stream_output = True  # the body is left unread: read here, within the limit
        try:
            response = send(request)
        except boto_errors.ConnectionClosedError as error:
            why = _headers_too_large(error)
            if why is not None:
                raise AnswerTooLarge(request.url, why) from error
            raise
        finally:
            request.stream_output = False
        body = _read_at_most(response.raw, request)
        return AWSResponse(response.url, response.status_code, response.headers, _Read(body))

    sending.send = limited
    sending._iam_create_access_key_limited = True


def _limit_headers() -> None:
    """Python's http.client reads every answer's headers: its limits are the process's (they
    bound the metrics server's requests too, which carry a few short headers)."""
    http.client._MAXLINE = MAX_HEADER_LINE_BYTES  # type: ignore[attr-defined]  # no public way
    http.client._MAXHEADERS = MAX_HEADERS  # type: ignore[attr-defined]


def _headers_too_large(error: boto_errors.ConnectionClosedError) -> str | None:
    """What was too large, when botocore's "connection closed" is http.client refusing the
    answer's headers (urllib3 gives up on the connection with the reason as its second
    argument); None for a connection really closed."""
    reason = getattr(error, "kwargs", {}).get("error")
    cause = reason.args[1] if reason is not None and len(reason.args) > 1 else None
    if isinstance(cause, http.client.LineTooLong):
        return f"had a line longer than {MAX_HEADER_LINE_BYTES // 1024} KiB"
    if isinstance(cause, http.client.HTTPException) and (
        str(cause) == f"got more than {MAX_HEADERS} headers"
    ):
        return f"had more than {MAX_HEADERS} headers"
    return None


def _read_at_most(raw: Any, request: Any) -> bytes:
    """The body of a urllib3 response, read as botocore reads it, or AnswerTooLarge (the
    connection closed, never handed back with part of an answer in it). What goes wrong while
    reading is raised as botocore's send raises it (a read timeout is botocore's
    ReadTimeoutError, a connection lost its ConnectionClosedError), as if botocore had read it."""
    url = request.url
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in raw.stream(_READ_BYTES):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raw.close()
                raw.release_conn()
                raise AnswerTooLarge(url)
            chunks.append(chunk)
    except urllib3_errors.SSLError as error:
        raise boto_errors.SSLError(endpoint_url=url, error=error) from error
    except urllib3_errors.ReadTimeoutError as error:
        raise boto_errors.ReadTimeoutError(endpoint_url=url, error=error) from error
    except urllib3_errors.ProtocolError as error:
        raise boto_errors.ConnectionClosedError(
            error=error, request=request, endpoint_url=url
        ) from error
    except AnswerTooLarge:
        raise
    except Exception as error:
        raise boto_errors.HTTPClientError(error=error) from error
    return b"".join(chunks)


class _Read:
    """A body already read, as botocore's AWSResponse reads one (its `stream`)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield self._body


def refuse_clear_text(endpoint_url: str) -> None:
    """The answers carry secrets: plain http is allowed only to this machine."""
    parts = urlsplit(endpoint_url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback(parts.hostname or ""):
        return
    where = parts.netloc.rpartition("@")[2]  # host and port as given, never a user name
    raise ActionError(
        f"the endpoint {parts.scheme}://{where} is not https, and the answers would "
        "carry secrets in clear (plain http is allowed to loopback only)",
        Category.INVALID_INPUT,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
