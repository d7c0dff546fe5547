"""``mlp replay``: captured answers checked against the registry's model versions.

A capture line (:mod:`servekit.capture`) says which version answered which input with what.
Replaying it loads that version from the registry, answers the input again (explaining it if
the captured answer held an explanation) and compares: the evidence that the logged answer is
the model's, and that the registry still holds the model that gave it. The lines may come
straight from a log (JSON lines, or text lines, among any others) or as the log stores export
them (see :func:`servekit.replay.log_stores.unwrapped`), or as capture objects alone, one per line.

A module a step, each readable alone, the way a capture travels: :mod:`.capture_objects` (what a
capture says, checked against the shape the service writes), :mod:`.text_lines` and
:mod:`.log_stores` (the forms a line comes in), :mod:`.capture_lines` (a line, and many, read as
captures), :mod:`.log_files` (a file, a directory, gzip, standard input), :mod:`.comparison` (an
answer against today's), :mod:`.replaying` (the versions answering again) and :mod:`.report`.
``mlp evaluate`` reads its captures with the same modules, so both commands read a log alike.
"""
