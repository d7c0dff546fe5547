"""Which rows a version trained on: a hash of each, logged with its run, so a later version is
compared with it only on held-out rows neither trained on (rebuilt from the data when the run has
no record)."""

from __future__ import annotations

import re
import tempfile
from typing import Any

import numpy as np
import pandas as pd

from servekit.datasets import DatasetError
from servekit.errors import ServekitError
from servekit.loading import one_line
from servekit.spec import ServiceSpec
from servekit.training.fingerprint import SYNTHETIC, sha256_of_frame
from servekit.training.splitting import split

#: The run artifact holding a hash of each training row (features and target): a later version
#: compares with this one only on held-out rows this one did not train on.
TRAINING_ROWS = "training_rows.npy"


def row_hashes(features: pd.DataFrame, target: pd.Series) -> np.ndarray:
    """One 64-bit hash per row of features and target, as read (the index left out)."""
    rows = pd.concat([features.reset_index(drop=True), target.reset_index(drop=True)], axis=1)
    return pd.util.hash_pandas_object(rows, index=False).to_numpy()


class TrainingRowsUnreadableError(Exception):
    """A run logged its training rows' hashes, and the store cannot give them."""


def logged_training_rows(
    client: Any, run_id: str, tracking_uri: str, record: dict[str, Any]
) -> np.ndarray | None:
    """The training-row hashes a run logged; None for a run of a release before they were.

    ``record``: the run's parameters. A run that lists no ``training_rows.npy`` logged none, unless
    it records ``data.held_out_copies``, which every run logging them has: theirs are gone from the
    store. Raises :class:`TrainingRowsUnreadableError` for those, and for a store that cannot list
    or give them: a comparison told "trained before mlp train logged them" of the current champion
    would send its operator after a release, not after the store.
    """
    import mlflow

    if not run_id:
        return None
    try:
        listed = {artifact.path for artifact in client.list_artifacts(run_id)}
    except Exception as exc:  # the store, not the run's age
        raise TrainingRowsUnreadableError(f"its run's artifacts cannot be listed: {one_line(exc)}") from exc
    if TRAINING_ROWS not in listed:
        if "data.held_out_copies" in record:  # logged with the hashes, since the first release of them
            raise TrainingRowsUnreadableError(
                f"its run logged them, and {TRAINING_ROWS} is no longer among its artifacts"
            )
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="servekit-rows-") as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=TRAINING_ROWS, dst_path=tmp, tracking_uri=tracking_uri
            )
            hashes: np.ndarray = np.load(path, allow_pickle=False)
    except Exception as exc:  # unreadable storage, a truncated or foreign file
        raise TrainingRowsUnreadableError(f"{TRAINING_ROWS}: {one_line(exc)}") from exc
    return hashes


def training_rows_of(run_id: str, tracking_uri: str) -> np.ndarray | None:
    """The training-row hashes a run logged; None for a run before they were, or unreadable (the
    load test's payloads fall back then; the trainer says which: :func:`logged_training_rows`)."""
    import mlflow

    try:
        client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
        params = dict(client.get_run(run_id).data.params) if run_id else {}
        return logged_training_rows(client, run_id, tracking_uri, params)
    except Exception:  # any registry problem is a reason to fall back
        return None


def rebuilt_training_rows(
    spec: ServiceSpec, theirs: dict[str, Any], recorded: dict[str, Any], frame: pd.DataFrame | None
) -> tuple[np.ndarray | None, str, list[str]]:
    """The hashes of a champion's training rows found again from its run's record, how, and (None)
    what of its record keeps them from being found.

    ``theirs``: its run's parameters (``seed``, ``test_size``, ``data.*``); ``recorded`` and
    ``frame``: this version's ``data`` record and the rows it was split from. :func:`split` is
    deterministic given the frame, the seed and the test size (a classifier's stratified by its
    target, as the service's recipe always has), so those of its record give its very split.
    """
    differs = []
    rows, of = _their_frame(spec, theirs, recorded, frame)
    if rows is None:
        differs.append(of)
    seed, test_size = theirs.get("seed"), theirs.get("test_size")
    if seed is None:
        differs.append("recorded no split seed")
    if test_size is None:
        differs.append("recorded no test size")
    if differs or rows is None:
        return None, "", differs
    try:
        held = float(str(test_size))
        learnt = split(spec, rows, int(str(seed)), held)
    except (DatasetError, ValueError) as exc:  # a seed or test size this split cannot take
        message = exc.message if isinstance(exc, ServekitError) else one_line(exc)
        return (
            None,
            "",
            [f"was split with seed {seed} and test size {test_size}, which cannot be made again ({message})"],
        )
    if of.startswith(SAME_DATA) and str(seed) == str(recorded.get("seed")) and held == spec.recipe.test_size:
        how = f"{SAME_DATA}, split seed and test size, so on the training rows of this version"
    else:
        how = f"{of}, which its split seed {seed} and test size {held:g} split into its training rows"
    return row_hashes(learnt.x_train, learnt.y_train), how, []


#: What :func:`_their_frame` says of a champion trained on the very rows this version was.
SAME_DATA = "was trained on the same data"
_GENERATED = re.compile(re.escape(SYNTHETIC) + r"rows=(\d+), seed=(-?\d+)\)")


def _their_frame(
    spec: ServiceSpec, theirs: dict[str, Any], recorded: dict[str, Any], frame: pd.DataFrame | None
) -> tuple[pd.DataFrame | None, str]:
    """The rows a champion's run split, and how they are had (:data:`SAME_DATA`, or generated
    again); None, and how its data differs, when they cannot be."""
    field = "frame_sha256" if theirs.get("data.frame_sha256") else "sha256"
    their_data, their_rows = theirs.get(f"data.{field}"), theirs.get("data.rows")
    if not their_data:
        return None, "recorded no hash of its data"
    if frame is not None and (str(their_data), str(their_rows)) == (
        str(recorded.get(field)),
        str(recorded.get("rows")),
    ):
        return frame, SAME_DATA if field == "sha256" else f"{SAME_DATA} ({field} {str(their_data)[:12]})"
    source = str(theirs.get("data.source", ""))
    differs = (
        f"was trained on other data ({field} {str(their_data)[:12]}, {_rows(their_rows)}; "
        f"this version's {str(recorded.get(field))[:12]}, {_rows(recorded.get('rows'))})"
    )
    generator = _GENERATED.fullmatch(source)
    if generator is None:
        return None, differs
    # Generated data is its generator seed's: the same seed gives the same rows, another seed other
    # rows, though a small vocabulary repeats some. Generated again, and checked against its hash
    # (generated data's sha256 is its frame's), they are the rows it split, whatever this version's.
    generated = spec.recipe.generate(int(generator[1]), int(generator[2]))
    if sha256_of_frame(generated) != str(their_data):
        return None, f"{differs}, which its generator, run again, no longer gives"
    return generated, f"was trained on {source}, generated again ({field} {str(their_data)[:12]} as recorded)"


def _rows(rows: Any) -> str:
    try:
        return f"{int(float(rows)):,} rows"
    except (TypeError, ValueError):
        return "rows not recorded"
