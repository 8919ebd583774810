"""A reader for dlib's binary serialization format (the ``.dat`` files dlib's ``serialize()`` writes).

The format, as dlib's ``serialize.h`` and ``dnn/tensor.h`` document it:

- an integer is one control byte then that many little-endian bytes: the low four bits of the
  control byte give the byte count, bit 7 says the value is negative (``01 02`` is 2,
  ``81 11`` is -17);
- a ``float`` or ``double`` is two integers, a mantissa and a base-2 exponent
  (``value = mantissa * 2**exponent``), so it is exact and portable;
- a string is an integer length, then its bytes;
- a ``bool`` is one character, ``'1'`` or ``'0'``;
- a tensor is a version integer (2), its four dimensions (samples, channels, rows, columns),
  then its values as raw little-endian IEEE float32 — the bulk of a network file;
- an alias tensor (a view into a layer's parameters) is a version integer (1) and four
  dimensions, with no values.

The file is not compressed: every value is read in order, and any mismatch is a
:class:`~facebench.errors.WeightsError` naming the byte offset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facebench.errors import WeightsError

TENSOR_VERSION = 2
ALIAS_TENSOR_VERSION = 1


class DlibReader:
    """Sequential reads of dlib-serialized values from one file's bytes."""

    def __init__(self, data: bytes, source: str = "<bytes>") -> None:
        self.data = data
        self.source = source
        self.offset = 0

    @classmethod
    def from_file(cls, path: str | Path) -> DlibReader:
        path = Path(path)
        try:
            return cls(path.read_bytes(), str(path))
        except OSError as exc:
            raise WeightsError(f"cannot read dlib weights file {str(path)!r}: {exc.strerror}") from None

    def error(self, message: str) -> WeightsError:
        return WeightsError(f"{self.source}, byte {self.offset}: {message}")

    def _take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise self.error(f"file ends early (wanted {count} more bytes); is it truncated?")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    @property
    def at_end(self) -> bool:
        return self.offset >= len(self.data)

    def integer(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8:
            raise self.error(f"bad integer control byte 0x{control:02x}; not a dlib file?")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def real(self) -> float:
        """A dlib ``float``/``double``: mantissa times two to the exponent."""
        mantissa = self.integer()
        exponent = self.integer()
        return float(mantissa * 2.0**exponent)

    def string(self) -> str:
        length = self.integer()
        if length < 0 or length > 1 << 16:
            raise self.error(f"implausible string length {length}; not a dlib file?")
        return self._take(length).decode("latin-1")

    def boolean(self) -> bool:
        char = self._take(1)
        if char not in (b"0", b"1"):
            raise self.error(f"expected a bool ('0' or '1'), found {char!r}")
        return char == b"1"

    def expect_integer(self, expected: int, what: str) -> None:
        value = self.integer()
        if value != expected:
            raise self.error(f"{what}: expected {expected}, found {value}")

    def expect_string(self, expected: str, what: str) -> None:
        start = self.offset
        value = self.string()
        if value != expected:
            self.offset = start
            raise self.error(f"{what}: expected {expected!r}, found {value!r}")

    def tensor(self) -> np.ndarray:
        """A tensor's values, shaped ``(samples, channels, rows, columns)``."""
        self.expect_integer(TENSOR_VERSION, "tensor version")
        shape = tuple(self.integer() for _ in range(4))
        if any(d < 0 for d in shape):
            raise self.error(f"negative tensor dimension {shape}")
        count = int(np.prod(shape))
        values = np.frombuffer(self._take(4 * count), dtype="<f4")
        return values.astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        """An alias tensor's shape (it holds no values)."""
        self.expect_integer(ALIAS_TENSOR_VERSION, "alias tensor version")
        return (self.integer(), self.integer(), self.integer(), self.integer())
