"""The Open Inference Protocol's binary tensor extension: tensors as bytes after the JSON body.

Tensors may come so (Triton's clients send them so by default): the body's first
``Inference-Header-Content-Length`` bytes are the JSON request, the rest the bytes of each tensor
that gives ``parameters.binary_data_size`` instead of ``data``, in the order of the inputs. A
response's outputs go so when the request asks for it; otherwise the response is JSON, which
those clients read as well.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from servekit.codecs.open_inference_types import BOOL, BYTES, RequestInput
from servekit.errors import FieldProblem

#: The binary tensor extension's header: the length of the JSON part of the body.
BINARY_HEADER = "inference-header-content-length"
#: The tensor parameter giving a binary tensor's length in bytes.
BINARY_DATA_SIZE = "binary_data_size"

#: Little-endian numpy dtypes of the binary tensor extension's fixed-size datatypes.
_BINARY_DTYPES = {
    BOOL: "?",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip
_LENGTH = struct.Struct("<I")


def attach_binary(
    inputs: list[RequestInput], binary: bytes, extension: bool, problems: list[FieldProblem]
) -> set[str]:
    """Give each input sent as binary its values, read from ``binary`` in input order; their names."""
    offset = 0
    names: set[str] = set()
    for tensor in inputs:
        size = (tensor.parameters or {}).get(BINARY_DATA_SIZE)
        if size is None:
            continue
        where = f"inputs[{tensor.name}].parameters.{BINARY_DATA_SIZE}"
        if not extension:
            problems.append(FieldProblem(where, f"given, but the request has no {BINARY_HEADER} header"))
            return names
        if type(size) is not int or size < 0:
            problems.append(FieldProblem(where, f"{size!r} is not a number of bytes"))
            return names
        if tensor.data is not None:
            problems.append(FieldProblem(where, "given with data; send the values one way"))
            return names
        chunk = binary[offset : offset + size]
        if len(chunk) < size:
            problems.append(
                FieldProblem(where, f"{size} bytes, but the binary part has {len(binary) - offset} left")
            )
            return names
        offset += size
        values = _from_binary(tensor.datatype, chunk)
        if isinstance(values, str):
            problems.append(FieldProblem(f"inputs[{tensor.name}].data", values))
            return names
        tensor.data = values
        names.add(tensor.name)
    if offset != len(binary):
        problem = f"{len(binary) - offset} bytes follow the last tensor's {BINARY_DATA_SIZE}"
        problems.append(FieldProblem("body", problem))
    return names


def tensor_bytes(datatype: str, data: list[Any]) -> bytes:
    """A tensor's elements in the binary layout (little-endian; BYTES elements length-prefixed)."""
    if datatype == BYTES:
        encoded = [str(value).encode("utf-8") for value in data]
        return b"".join(_LENGTH.pack(len(item)) + item for item in encoded)
    return np.asarray(data, dtype=_BINARY_DTYPES[datatype]).tobytes()


def _from_binary(datatype: str, chunk: bytes) -> list[Any] | str:
    """The values of a binary tensor, or what is wrong with its bytes."""
    if datatype != BYTES:
        dtype = np.dtype(_BINARY_DTYPES[datatype])
        if len(chunk) % dtype.itemsize:
            size = dtype.itemsize
            return f"{len(chunk)} bytes are not a whole number of {datatype} values ({size} bytes each)"
        values: list[Any] = np.frombuffer(chunk, dtype=dtype).tolist()
        return values
    # BYTES: each element is its length (4 bytes, little-endian) and then its bytes.
    texts: list[Any] = []
    offset = 0
    while offset < len(chunk):
        if offset + _LENGTH.size > len(chunk):
            return f"element {len(texts)}: its 4-byte length is cut off"
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += _LENGTH.size
        if offset + length > len(chunk):
            return f"element {len(texts)}: {length} bytes announced, {len(chunk) - offset} left"
        try:
            texts.append(chunk[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            return f"element {len(texts)} is not UTF-8 text"
        offset += length
    return texts
