"""API keys: who may ask a service for predictions, and who asked.

Off unless ``<SVC>_API_KEYS_FILE`` names a keys file. The file holds one line per key,
``<client>:sha256:<hex digest of the key>[:expires=<date>][:scope=read]``, so the Secret it is
mounted from holds no key a leak would hand out: a key is shown once, to whoever creates it
(``mlp api-key``), and the service only ever compares digests. A key with an expiry date is refused
from then on (``mlp api-key`` gives one 90 days unless told otherwise), so a key handed to a
contractor or copied into a notebook stops working without anyone remembering to revoke it; each
client's last expiry is exported (``<svc>_api_key_expiry_timestamp_seconds``) and alerted on
beforehand. A client sends its key as ``Authorization: Bearer <key>`` (what OpenAPI's and the Open
Inference Protocol's clients send) or ``X-API-Key: <key>``. An Authorization of another scheme
(a proxy's Basic, say) leaves X-API-Key to carry the key; a header sent twice is refused.

A line without a scope opens every endpoint, as every line did before scopes existed. One of
``scope=read`` (``mlp api-key --read-only``) opens the metadata endpoints only (``READ_ENDPOINTS``:
``/model``, ``/model/card``, the Open Inference Protocol's server and model metadata), so on-call
can read what a pod serves without holding a key that runs the model; a GET of a path no
endpoint has gets the 404 (or redirect) a full key gets. Anything else answers it 403 naming its
client. A service older than scopes refuses such a line as it refuses any bad one,
so a read-only key never opens more than metadata.

The client's name, never its key, goes on every log line written for its request (capture
lines included), so an auditor can say which client was given which answer.

The file is read again when it changes (checked at most every ``RELOAD_SECONDS``): a
key added to the Secret starts working, and one removed stops, within about a minute of
the kubelet updating the volume, with no restart. A file that becomes unreadable or invalid
leaves the keys read last in force (the service keeps answering its clients), says so in the log,
and sets ``<svc>_api_keys_reload_failing`` to 1 until a file that reads is in place: a key revoked
in that file is still honoured meanwhile, which the ``ApiKeysReloadFailing`` alert tells.

The digest is a plain SHA-256, not a password hash: keys are 256 random bits, so there is
nothing to guess, and a request must not spend a slow hash's milliseconds.

A module a concern, each importing only those before it: :mod:`.scopes` (what a key opens, and
what needs no key), :mod:`.expiry` (when a key stops working), :mod:`.key_lines` (the keys file's
lines, made and read), :mod:`.credentials` (the key a request's headers carry, and the 401 or 403
refusing it) and :mod:`.api_keys` (a service's keys, read again when the file changes: the one
module holding state). The services build :class:`.api_keys.ApiKeys`; ``mlp api-key`` and
``mlp api-keys`` write and rewrite lines with the modules before it.
"""
