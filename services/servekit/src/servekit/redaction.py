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

MASK = "***"

#: ``scheme://userinfo@``: everything up to the last ``@`` before the host's end (``/ ? #`` or
#: white space), as urllib splits it, since a password with a raw ``@`` in it is still the password.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
#: ``name=value`` after ``?``, ``&``, ``;`` or ``#``: a query's parameters, an Azure connection
#: string's, and an OAuth implicit grant's fragment (``#access_token=...&token_type=bearer``).
_PARAMETER = re.compile(r"(?P<lead>[?&;#])(?P<name>[^=&#;?\s]*)=(?P<value>[^&#;\s]*)")
#: A name's words: split at ``_ - .`` and where camelCase turns (``accessToken``, ``AccountKey``).
_WORD_BREAK = re.compile(r"[-_.]+|(?<=[a-z0-9])(?=[A-Z])")

#: A last word ending so names a secret whatever comes before: ``token``, ``id_token``,
#: ``refresh_token``, ``X-Amz-Security-Token``, ``client_secret``, ``X-Goog-Signature``,
#: ``X-Amz-Credential``, ``db_password``. Not ``tokens`` (``max_tokens=5`` is a count).
_SECRET_ENDINGS = ("token", "secret", "password", "passwd", "signature", "credential", "credentials")
#: Words too short to be trusted inside another: Azure SAS's ``sig`` but not ``sigma``, ``auth``
#: but not ``author``.
_SECRET_WORDS = frozenset({"sig", "pwd", "auth", "authorization"})
#: ``key`` alone (Google's ``?key=``), or after one of these (``api_key``, ``apiKey``,
#: ``x-api-key``, ``AccountKey``, ``aws_secret_access_key``): a key that opens something, not
#: ``sort_key``, ``monkey`` or ``keyboard``.
_KEY_KINDS = frozenset(
    {"api", "access", "secret", "private", "client", "signing", "master", "account", "subscription", "auth"}
)
#: Tokens that are a list's cursor, not a credential; MLflow's own searches send ``page_token``.
_CURSORS = frozenset({"pagetoken", "nextpagetoken", "nexttoken", "continuationtoken"})


def redact(text: str) -> str:
    """``text`` with the user info and the secret parameters of every URI in it masked."""
    if "://" in text:
        text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    if "=" in text:
        text = _PARAMETER.sub(_masked, text)
    return text


def _names_a_secret(name: str) -> bool:
    """Whether a parameter called ``name`` holds a secret, judged by its last word."""
    words = [word.lower() for word in _WORD_BREAK.split(name) if word]
    if not words or "".join(words) in _CURSORS:
        return False
    last = words[-1]
    if last in _SECRET_WORDS or last.endswith(_SECRET_ENDINGS):
        return True
    if last == "key":
        return len(words) == 1 or words[-2] in _KEY_KINDS
    return last.endswith("key") and last.removesuffix("key") in _KEY_KINDS


def _masked(parameter: re.Match[str]) -> str:
    lead, name, value = parameter["lead"], parameter["name"], parameter["value"]
    if _names_a_secret(name):
        return f"{lead}{name}={MASK}"
    # A value may be a URI with its own query (``?next=https://h/cb?token=...``).
    return f"{lead}{name}={_PARAMETER.sub(_masked, value)}"
