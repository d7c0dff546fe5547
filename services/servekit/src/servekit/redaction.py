"""Text fit to show: the credentials a URI in it may carry replaced by ``***``.

An operator may put a password or token in ``MLFLOW_TRACKING_URI``
(``https://alice:pw@mlflow.example``), which MLflow's client accepts, and MLflow repeats that URI,
or a presigned artifact URL, in its exception messages. Whatever quotes a URI or such a message
where others read it (``/readyz``, ``/model``, a log line) goes through :func:`redact` first: the
whole text, not the URI alone, since the secret is also inside the wrapped exception's text.
"""

from __future__ import annotations

import re

MASK = "***"

#: ``scheme://userinfo@``: everything up to the last ``@`` before the host's end (``/ ? #`` or
#: white space), as urllib splits it, since a password with a raw ``@`` in it is still the password.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
#: A query parameter whose name says it holds a secret: ``?token=``, ``access_token``, ``api_key``,
#: ``password``, S3's ``X-Amz-Signature``/``X-Amz-Credential``, GCS's ``X-Goog-Signature``, Azure's
#: SAS ``sig``. Its name stays, to say what was there.
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;][^=&#;\s]*(?:token|signature|sig|key|password|passwd|secret|credential|auth)"
    r"[^=&#;\s]*=)[^&#;\s]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with the user info and the secret query parameters of every URI in it masked."""
    if "://" in text:
        text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    if "=" in text:
        text = _SECRET_PARAMETER.sub(rf"\g<name>{MASK}", text)
    return text
