"""``mlp score``: a CSV, Parquet or JSON Lines file (or a directory of parts) scored offline, row for row.

The monthly run over every customer does not belong on the online service: it would compete
with live traffic and go through HTTP for nothing. This is SageMaker's Batch Transform and
Vertex AI's batch prediction for a file on hand, with the service's own validation and model:

* Every input row is in the output, in order, with all its columns (so an id such as
  ``CustomerId`` joins the scores back), then the prediction's fields, ``model_version``, and
  ``error``. A row the request model rejects keeps its place, with no prediction and the
  field and problem in ``error``: nothing is dropped unseen.
* CSV cells carry no types, so rows are validated in pydantic's lax mode ("42" is an age);
  every constraint of the API still holds (ranges, categories, no NaN). A Parquet file's
  columns are typed, and so are a JSON Lines file's values: they are validated as the API
  validates the same JSON values, strictly ("42" and true are no age). The scores are written
  as the output's name says, Parquet, CSV or JSON Lines, whatever the input
  (``servekit.scoring.formats``).
* The file is read and written in chunks, so its size is bounded by the disk, not the memory,
  and the output appears only once it is whole (written beside it, then renamed; a link's file
  is replaced, the link kept). Standard output (``-``), a device or a pipe is written straight
  through as the rows are scored (``written_whole``).
* ``explain`` adds the explanation of each row as JSON, exactly the API's.
* A large file's chunks past the first are scored by ``workers`` processes, a few at a time,
  and written in order (``servekit.scoring.pool``): the output is the same, byte for byte, as
  scored in one process, and a file scored sooner than the workers start never waits for them.
* A tree model's answers list the inputs outside the range of its training rows
  (``outside_training``, as JSON); the summary counts those rows per field.
"""

from servekit.scoring.cells import flatten
from servekit.scoring.fingerprints import file_fingerprints
from servekit.scoring.formats import ScoringError
from servekit.scoring.outputs import write_summary
from servekit.scoring.run import score_file, validate_rows

__all__ = [
    "ScoringError",
    "file_fingerprints",
    "flatten",
    "score_file",
    "validate_rows",
    "write_summary",
]
