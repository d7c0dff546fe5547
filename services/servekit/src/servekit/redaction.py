"""Text fit to show: the credentials a URI in it may carry replaced by ``***``.

An operator may put a password or token in ``MLFLOW_TRACKING_URI``
(``https://alice:pw@mlflow.example``), which MLflow's client accepts, and MLflow repeats that URI,
or a presigned artifact URL, in its exception messages. Whatever quotes a URI or such a message
where others read it (``/readyz``, ``/model``, a log line, a command's output) goes through
:func:`redact` first: the whole text, not the URI alone, since the secret is also inside the
wrapped exception's text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

MASK = "***"

#: ``scheme://userinfo@``: everything up to the last ``@`` before the host's end (``/ ? #`` or
#: white space), as urllib splits it, since a password with a raw ``@`` in it is still the password.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
#: ``name=value`` after ``?``, ``&``, ``;`` or ``#``: a query's parameters, an Azure connection
#: string's, and an OAuth implicit grant's fragment (``#access_token=...&token_type=bearer``).
#: Punctuation that ends the value's sentence, not the value (``?token=abc: MlflowException``),
#: stays outside it: masked with the value, the message read ``?token=*** MlflowException``.
_PARAMETER = re.compile(
    r"(?P<lead>[?&;#])(?P<name>[^=&#;?\s]*)=(?P<value>[^&#;\s]*?)(?=[:,.)\]'\"]*(?:[&#;\s]|$))"
)
#: A name's words: split at ``_ - .`` and where camelCase turns (``accessToken``, ``AccountKey``).
_WORD_BREAK = re.compile(r"[-_.]+|(?<=[a-z0-9])(?=[A-Z])")
#: A version word (``access_token_v2``) names no more than the name before it does.
_VERSION = re.compile(r"v\d+")

#: A word ending so names a secret wherever it stands in the name: ``token``, ``id_token``,
#: ``tokenValue``, ``X-Amz-Security-Token``, ``client_secret``, ``X-Goog-Signature``,
#: ``X-Amz-Credential``, ``db_password``. Not ``tokens`` (``max_tokens=5`` is a count).
_SECRET_ENDINGS = ("token", "secret", "password", "passwd", "signature", "credential", "credentials")
#: Last words that make a name one *about* a secret, not the secret: ``token_type=bearer``,
#: ``token_type_hint``, ``oauth_signature_method=HMAC-SHA1``, ``SignatureVersion=4``.
_ABOUT_A_SECRET = frozenset({"type", "hint", "method", "version", "expires", "expiry", "ttl"})
#: Words too short to be trusted inside another, so judged only as the last word: Azure SAS's
#: ``sig`` but not ``sigma``, ``auth`` but not ``author`` or ``auth_type``.
_SECRET_WORDS = frozenset({"sig", "pwd", "auth", "authorization"})
#: ``key`` as the last word opens something (``key``, ``api_key``, ``hmac_key``, ``sessionKey``,
#: ``XApiKey``) unless the word before it says it only finds a row or an entry.
_HARMLESS_KEYS = frozenset(
    {"sort", "primary", "foreign", "partition", "range", "row", "page", "cache", "idempotency", "object"}
)
#: A single word ending in ``key`` (``apikey``, ``accountkey``) opens something only after one of
#: these: not ``monkey``, ``turkey``.
_KEY_KINDS = frozenset(
    {
        "api", "access", "secret", "private", "client", "signing", "master", "account", "subscription",
        "auth", "shared", "session", "encryption", "hmac", "app",
    }
)  # fmt: skip
#: Tokens that are a list's cursor, not a credential; MLflow's own searches send ``page_token``.
_CURSORS = frozenset(
    {"pagetoken", "nextpagetoken", "nexttoken", "continuationtoken", "paginationtoken", "startingtoken"}
)


def redact(text: str) -> str:
    """``text`` with the user info and the secret parameters of every URI in it masked."""
    if "://" in text:
        text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    if "=" in text:
        text = _PARAMETER.sub(_masked, text)
    return text


def _words(name: str) -> list[str]:
    """``name``'s words, lower case, as a client meant them.

    Percent-decoded first (``api%5Fkey`` is ``api_key`` to the server that reads it); a trailing
    number (``token2``, ``api_key2``) and a version word (``access_token_v2``) dropped.
    """
    words = []
    for word in _WORD_BREAK.split(unquote(name)):
        lowered = word.lower()
        if _VERSION.fullmatch(lowered):
            continue
        lowered = lowered.rstrip("0123456789")
        if lowered:
            words.append(lowered)
    return words


# Names repeat (an access line per request with ``?explain=true``); bounded, as a client picks them.
@lru_cache(maxsize=512)
def _names_a_secret(name: str) -> bool:
    """Whether a parameter called ``name`` holds a secret, judged by its words."""
    words = _words(name)
    if not words or "".join(words) in _CURSORS:
        return False
    last = words[-1]
    if last in _SECRET_WORDS:
        return True
    if last not in _ABOUT_A_SECRET and any(word.endswith(_SECRET_ENDINGS) for word in words):
        return True
    if last == "key":
        return len(words) == 1 or words[-2] not in _HARMLESS_KEYS
    return last.endswith("key") and last.removesuffix("key") in _KEY_KINDS


def _masked(parameter: re.Match[str]) -> str:
    lead, name, value = parameter["lead"], parameter["name"], parameter["value"]
    if _names_a_secret(name):
        return f"{lead}{name}={MASK}"
    # A value may be a URI with its own query (``?next=https://h/cb?token=...``).
    return f"{lead}{name}={_PARAMETER.sub(_masked, value)}"
