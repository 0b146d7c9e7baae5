"""Readers for pair lists. Every reader yields :class:`Pair` records with fold, label, identities and paths.

Formats (see ``shared/data/SOURCES.md`` for the originals):

- ``lfw`` / ``xqlfw``: ``pairs.txt`` of LFW view 2. Line 1 ``<folds><TAB><n>``, then per fold ``n`` matched
  lines ``name n1 n2`` and ``n`` mismatched lines ``name1 n1 name2 n2``; images ``name/name_%04d.jpg``.
- ``calfw`` / ``cplfw``: two lines per pair, ``<file> <label>``; a label > 0 is genuine, 0 imposter.
  The k-th genuine pair and the k-th imposter pair go to fold ``k // (count / 10)``: this reproduces both the
  CALFW layout (blocks of 300 + 300 per fold) and the all-genuine-first CPLFW list (FaceX-Zoo convention).
- ``sllfw``: two lines per pair, ``Name/Name_%04d.jpg``; 10 folds of 300 matched then 300 mismatched pairs.
- ``csv``: ``path1,path2,label[,fold]`` with an optional header; label 1 genuine, 0 imposter; a fold from 0 to 9.
  Without a fold column the k-th genuine and the k-th imposter pair go to fold ``k % 10``.

Every file is read as UTF-8 (a byte-order mark is dropped); every error names the file and its 1-based line.
Image paths are relative to the dataset root and may not leave it (``..``, absolute paths) unless
``allow_outside_root`` is given.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xfv.errors import XfvError

NUM_FOLDS = 10
MAX_DIGITS = 9  # numbers of a pair list (counts, image numbers, labels, folds) have at most this many digits
SHOWN = 80  # characters of a malformed line quoted in its error


@dataclass(frozen=True)
class Pair:
    """One verification pair; ``image1`` and ``image2`` are paths relative to the dataset root."""

    index: int
    fold: int
    label: int  # 1 genuine (same person), 0 imposter
    image1: str
    image2: str
    identity1: str
    identity2: str
    line: int = 0  # 1-based line of the pair (its first line) in the pair list


@dataclass(frozen=True)
class PairList:
    name: str
    root: Path
    pairs: list[Pair]

    def path(self, relative: str) -> Path:
        return self.root / relative

    def __len__(self) -> int:
        return len(self.pairs)


def _malformed(path: Path, lineno: int, expected: str, line: str) -> XfvError:
    text = line.strip()
    shown = repr(text) if len(text) <= SHOWN else f"{text[:SHOWN]!r}... ({len(text)} characters)"
    return XfvError(f"{path}:{lineno}: malformed pair list line, expected {expected}, got {shown}.")


def is_number(text: str) -> bool:
    """A non-negative integer of ASCII digits, at most :data:`MAX_DIGITS` of them (``int`` would refuse, or
    take its time over, thousands of digits)."""
    return text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS


def read_text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, without line ends; a leading byte-order mark is dropped. Another encoding
    is an :class:`~xfv.errors.XfvError` naming the file, the 1-based line and the byte."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        line = error.object.count(b"\n", 0, error.start) + 1
        raise XfvError(f"{path}:{line}: not UTF-8 text (byte 0x{error.object[error.start]:02x}); "
                       "save the file as UTF-8.") from None


def check_fold(fold_text: str, path: Path, lineno: int) -> int:
    """A fold number from 0 to ``NUM_FOLDS - 1``; an error naming the file and line otherwise."""
    text = fold_text.strip()
    if not is_number(text) or not 0 <= int(text) < NUM_FOLDS:
        shown = repr(text) if len(text) <= SHOWN else f"{text[:SHOWN]!r}... ({len(text)} characters)"
        raise XfvError(f"{path}:{lineno}: fold must be an integer from 0 to {NUM_FOLDS - 1}, got {shown}.")
    return int(text)


def _lfw_image(name: str, number: str, path: Path, lineno: int, line: str) -> str:
    if not is_number(number):
        raise _malformed(path, lineno, f"an image number (at most {MAX_DIGITS} digits)", line)
    return f"{name}/{name}_{int(number):04d}.jpg"


def read_lfw_pairs(path: Path) -> Iterator[Pair]:
    """LFW view 2 ``pairs.txt`` (also XQLFW's ``xqlfw_pairs.txt``)."""
    lines = read_text_lines(path)
    if not lines:
        raise XfvError(f"{path}:1: the pair list is empty.")
    header = lines[0].split()
    if len(header) != 2 or not all(is_number(h) for h in header):
        raise _malformed(path, 1, "'<folds><TAB><pairs per class>'", lines[0])
    num_folds, per_class = int(header[0]), int(header[1])
    if not 1 <= num_folds <= NUM_FOLDS or per_class < 1:
        raise XfvError(f"{path}:1: the header must announce 1 to {NUM_FOLDS} folds of at least 1 pair per class, "
                       f"got {lines[0].strip()!r}.")
    expected = num_folds * per_class * 2
    body = [(n, line) for n, line in enumerate(lines[1:], start=2) if line.strip()]
    if len(body) != expected:
        where = body[expected][0] if len(body) > expected else len(lines) + 1
        raise XfvError(
            f"{path}:{where}: the header (line 1) announces {num_folds} folds x {per_class} x 2 = {expected} pairs, "
            f"but the file has {len(body)} pair lines."
        )
    for index, (lineno, line) in enumerate(body):
        fields = line.split()
        fold, position = divmod(index, 2 * per_class)
        if position < per_class:
            if len(fields) != 3:
                raise _malformed(path, lineno, "a matched pair 'name n1 n2'", line)
            name, n1, n2 = fields
            yield Pair(index, fold, 1, _lfw_image(name, n1, path, lineno, line),
                       _lfw_image(name, n2, path, lineno, line), name, name, lineno)
        else:
            if len(fields) != 4:
                raise _malformed(path, lineno, "a mismatched pair 'name1 n1 name2 n2'", line)
            name1, n1, name2, n2 = fields
            yield Pair(index, fold, 0, _lfw_image(name1, n1, path, lineno, line),
                       _lfw_image(name2, n2, path, lineno, line), name1, name2, lineno)


_IDENTITY = re.compile(r"^(?P<identity>.+?)_\d+\.(jpg|jpeg|png)$", re.IGNORECASE)


def _identity_of(filename: str) -> str:
    match = _IDENTITY.match(Path(filename).name)
    return match.group("identity") if match else Path(filename).stem


def _two_line_records(path: Path, fields_per_line: int, expected: str) -> list[tuple[int, list[str], list[str]]]:
    lines = [(n, line) for n, line in enumerate(read_text_lines(path), start=1) if line.strip()]
    if not lines:
        raise XfvError(f"{path}:1: the pair list is empty.")
    if len(lines) % 2:
        raise XfvError(f"{path}:{lines[-1][0]}: two lines per pair expected, but the file has an odd number "
                       f"({len(lines)}) of lines: this last one has no partner.")
    records = []
    for (n1, line1), (n2, line2) in zip(lines[0::2], lines[1::2]):
        f1, f2 = line1.split(), line2.split()
        for n, fields, line in ((n1, f1, line1), (n2, f2, line2)):
            if len(fields) != fields_per_line:
                raise _malformed(path, n, expected, line)
        records.append((n1, f1, f2))
    return records


def read_calfw_pairs(path: Path) -> Iterator[Pair]:
    """CALFW / CPLFW: two lines ``<file> <label>`` per pair; folds by rank within each class."""
    records = _two_line_records(path, 2, "'<file> <label>'")
    labels = []
    for lineno, f1, f2 in records:
        if not (is_number(f1[1]) and is_number(f2[1])):
            raise _malformed(path, lineno, f"an integer label (at most {MAX_DIGITS} digits)", " ".join(f1))
        if (int(f1[1]) > 0) != (int(f2[1]) > 0):
            raise XfvError(f"{path}:{lineno}: the two lines of a pair disagree on the label ({f1[1]} vs {f2[1]}).")
        labels.append(1 if int(f1[1]) > 0 else 0)
    counts = {c: labels.count(c) for c in (0, 1)}
    seen = {0: 0, 1: 0}
    for index, ((lineno, f1, f2), label) in enumerate(zip(records, labels)):
        per_fold = max(1, counts[label] // NUM_FOLDS)
        fold = min(seen[label] // per_fold, NUM_FOLDS - 1)
        seen[label] += 1
        yield Pair(index, fold, label, f1[0], f2[0], _identity_of(f1[0]), _identity_of(f2[0]), lineno)


def read_sllfw_pairs(path: Path) -> Iterator[Pair]:
    """SLLFW ``pair_SLLFW.txt``: two lines per pair, 10 folds of 300 matched then 300 mismatched pairs."""
    records = _two_line_records(path, 1, "'Name/Name_NNNN.jpg'")
    per_fold = len(records) // NUM_FOLDS
    if per_fold == 0 or len(records) % (2 * NUM_FOLDS):
        raise XfvError(f"{path}:{records[-1][0]}: {len(records)} pairs up to this line cannot form {NUM_FOLDS} folds "
                       "of matched + mismatched pairs.")
    for index, (lineno, f1, f2) in enumerate(records):
        fold, position = divmod(index, per_fold)
        label = 1 if position < per_fold // 2 else 0
        yield Pair(index, fold, label, f1[0], f2[0], _identity_of(f1[0]), _identity_of(f2[0]), lineno)


def read_csv_pairs(path: Path) -> Iterator[Pair]:
    """Generic CSV ``path1,path2,label[,fold]`` (header optional, spaces around its names allowed)."""
    reader = csv.reader(read_text_lines(path))
    rows = [(reader.line_num, row) for row in reader if row and any(c.strip() for c in row)]
    if rows and [c.strip().lower() for c in rows[0][1][:3]] == ["path1", "path2", "label"]:
        rows = rows[1:]
    if not rows:
        raise XfvError(f"{path}:1: the pair list has no pairs.")
    seen = {0: 0, 1: 0}
    for index, (lineno, row) in enumerate(rows):
        if len(row) not in (3, 4):
            raise _malformed(path, lineno, "'path1,path2,label[,fold]'", ",".join(row))
        label_text = row[2].strip()
        if label_text not in ("0", "1"):
            raise _malformed(path, lineno, "label 1 (genuine) or 0 (imposter)", ",".join(row))
        label = int(label_text)
        fold = check_fold(row[3], path, lineno) if len(row) == 4 else seen[label] % NUM_FOLDS
        seen[label] += 1
        image1, image2 = row[0].strip(), row[1].strip()
        yield Pair(index, fold, label, image1, image2, _identity_of(image1), _identity_of(image2), lineno)


def _check_inside_root(pair: Pair, pairs_path: Path) -> None:
    for image in (pair.image1, pair.image2):
        if not image:
            raise XfvError(f"{pairs_path}:{pair.line}: an image path is empty.")
        normal = os.path.normpath(image)
        if os.path.isabs(image) or normal == ".." or normal.startswith(".." + os.sep):
            raise XfvError(f"{pairs_path}:{pair.line}: image path {image!r} leaves the dataset root; paths are "
                           "relative to --root (pass --allow-outside-root to allow others).")


DATASET_FORMATS = {
    "lfw": (read_lfw_pairs, "pairs.txt"),
    "xqlfw": (read_lfw_pairs, "xqlfw_pairs.txt"),
    "calfw": (read_calfw_pairs, "pairs_CALFW.txt"),
    "cplfw": (read_calfw_pairs, "pairs_CPLFW.txt"),
    "sllfw": (read_sllfw_pairs, "pair_SLLFW.txt"),
    "csv": (read_csv_pairs, "pairs.csv"),
}


MAX_NAME = 100  # characters of a dataset name (the database column's size)


def check_dataset_name(name: str) -> str:
    """A dataset name the platform can store and put in a URL path segment: 1 to :data:`MAX_NAME` characters, no
    ``/`` or ``\\``, no control characters, not ``.`` or ``..``; an error naming it otherwise."""
    if not name or len(name) > MAX_NAME:
        raise XfvError(f"Dataset name {name[:MAX_NAME]!r} must have 1 to {MAX_NAME} characters, not {len(name)}.")
    bad = sorted({c for c in name if c in "/\\" or not c.isprintable()})
    if bad or name in (".", ".."):
        what = f"contains {', '.join(map(repr, bad))}" if bad else "is a path"
        raise XfvError(f"Dataset name {name!r} {what}: it names the dataset in URLs (/api/datasets/NAME/...); "
                       "choose another --name, without '/', '\\' or control characters.")
    return name


def read_pairs(
    dataset: str, root: str | Path, pairs_file: str | Path | None = None, name: str | None = None, *,
    allow_outside_root: bool = False,
) -> PairList:
    """Read the pair list of ``dataset`` (a format in :data:`DATASET_FORMATS`) whose images lie under ``root``.

    ``pairs_file`` defaults to the format's usual file name inside ``root``. An image path that leaves ``root``
    (absolute, or through ``..``) is an error unless ``allow_outside_root``. ``name`` (default: the format's)
    must pass :func:`check_dataset_name`.
    """
    if dataset not in DATASET_FORMATS:
        raise XfvError(f"Unknown dataset format {dataset!r}; expected one of {sorted(DATASET_FORMATS)}.")
    name = check_dataset_name(name or dataset)
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"Dataset root {str(root)!r} is not a directory.")
    reader, default_file = DATASET_FORMATS[dataset]
    pairs_path = Path(pairs_file) if pairs_file is not None else root / default_file
    if not pairs_path.is_file():
        raise FileNotFoundError(f"Pair list {str(pairs_path)!r} not found (give it with --pairs).")
    pairs = list(reader(pairs_path))
    if not allow_outside_root:
        for pair in pairs:
            _check_inside_root(pair, pairs_path)
    return PairList(name, root, pairs)
