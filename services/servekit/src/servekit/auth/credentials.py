"""The key a request carries, from its headers (HTTP) or metadata (gRPC), and the refusals of one.

Both protocols hand this module their headers as lower-case names and values, so a key sent
wrong is refused with the same 401, naming the same field, whichever protocol it came by. A
refusal never repeats what was sent: a malformed header may be the key itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from servekit.auth.key_lines import KEY_PREFIX
from servekit.auth.scopes import READABLE, Key
from servekit.errors import FieldProblem, ServekitError

AUTHORIZATION = "authorization"
API_KEY_HEADER = "x-api-key"
#: The credential headers as documented (refusals name them so; gRPC metadata keys are lower-case).
CREDENTIAL_HEADERS = {AUTHORIZATION: "Authorization", API_KEY_HEADER: "X-API-Key"}
#: Authorization schemes a refusal may name back: registered names, never anyone's key. Any other
#: first word is not repeated, since a client that left out "Bearer " sent its key there.
KNOWN_SCHEMES = frozenset(
    {"basic", "digest", "negotiate", "ntlm", "oauth", "hoba", "mutual", "dpop", "gnap", "token", "vapid"}
)
#: Longer credentials are refused unread: nobody's key is this long, and hashing one costs time.
MAX_KEY_LENGTH = 512


def credential_field(name: str, where: str = "header.") -> str:
    """How a refusal names a credential header: as documented, or as lower-case gRPC metadata."""
    documented = CREDENTIAL_HEADERS[name]
    return f"{where}{documented}" if where == "header." else f"{where}{documented.lower()}"


def credential_headers(sent: Iterable[tuple[str, str]], where: str = "header.") -> dict[str, str]:
    """A request's Authorization and X-API-Key (of its headers or gRPC metadata) by lower-case name.

    One sent more than once is a 401: which copy a proxy or a server keeps differs, so none is
    taken for the key.
    """
    values: dict[str, list[str]] = {}
    for name, value in sent:
        if name.lower() in CREDENTIAL_HEADERS:
            values.setdefault(name.lower(), []).append(value)
    for name, copies in values.items():
        if len(copies) > 1:
            raise unauthenticated(credential_field(name, where), f"sent {len(copies)} times: send it once")
    return {name: copies[0] for name, copies in values.items()}


def not_bearer(authorization: str) -> str:
    """Why an Authorization value holds no Bearer key, without repeating any of it (it may be the key)."""
    scheme, space, _ = authorization.strip().partition(" ")
    if not scheme:
        return "empty: send 'Authorization: Bearer <key>'"
    if not space or scheme.startswith(KEY_PREFIX):
        return "the scheme is missing: send 'Authorization: Bearer <key>', not the key alone"
    if scheme.lower() in KNOWN_SCHEMES:
        return f"scheme {scheme!r} is not Bearer: send 'Bearer <key>' (or the key in X-API-Key)"
    return "not 'Bearer <key>': send 'Authorization: Bearer <key>' (or the key in X-API-Key)"


def credential(headers: Mapping[str, str], where: str = "header.") -> tuple[str, str]:
    """The key a request carries and the field it came in; a 401 naming what is wrong."""
    authorization, api_key = headers.get(AUTHORIZATION), headers.get(API_KEY_HEADER)
    scheme, _, bearer = (authorization or "").strip().partition(" ")
    if authorization is not None and scheme.lower() == "bearer":
        where_sent, key = credential_field(AUTHORIZATION, where), bearer
        if api_key is not None and api_key.strip() != key.strip():
            raise unauthenticated(
                credential_field(API_KEY_HEADER, where),
                "a key other than Authorization's: send one key, in one of the two headers",
            )
    elif api_key is not None:
        # An Authorization of another scheme is a proxy's (Basic, say), not this service's.
        where_sent, key = credential_field(API_KEY_HEADER, where), api_key
    elif authorization is not None:
        raise unauthenticated(credential_field(AUTHORIZATION, where), not_bearer(authorization))
    else:
        raise unauthenticated(
            credential_field(AUTHORIZATION, where),
            "missing: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        )
    key = key.strip()
    if not key:
        raise unauthenticated(where_sent, "the key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise unauthenticated(where_sent, f"longer than {MAX_KEY_LENGTH} characters: no key of this service")
    return key, where_sent


def unauthenticated(field: str, problem: str) -> ServekitError:
    return ServekitError(
        401,
        "unauthenticated",
        f"this endpoint needs an API key of this service: {field}: {problem}",
        (FieldProblem(field, problem),),
    )


def forbidden(field: str, key: Key) -> ServekitError:
    """A 403: the key is the service's, but its scope does not open this endpoint. Not a 401, which
    would tell its client the key is wrong, and counted apart from the refusals of no key."""
    problem = f"{key.client}'s key reads metadata only (scope={key.scope}): it opens {READABLE}"
    return ServekitError(
        403,
        "forbidden",
        f"this endpoint is closed to read-only keys: {field}: {problem}; "
        "predictions need a key without a scope",
        (FieldProblem(field, problem),),
    )
