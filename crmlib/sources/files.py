"""Reading users' files (CSV, Excel, Parquet) robustly, for ``crmlib data import``.

:func:`read_file` returns a polars frame: for CSV and Excel every column is a string (so that validation,
not the reader, reports values that do not parse, with their row numbers); Parquet comes back as stored.
:func:`load_file` returns the same frame with what was learnt on the way (:class:`FileData`: encoding,
delimiter, sheet, the row number of every data row).

CSV
    *Encoding*: UTF-8 (with or without a BOM) is tried first, strictly; then GB18030 (a superset of GBK
    and GB2312, what Chinese Excel writes as "CSV"); then detection (charset-normalizer). UTF-16 files with
    a BOM (Excel's "Unicode text") are read too. A file that is UTF-8 on most lines and something else on a
    few (two exports pasted together) is refused, naming the lines. An ``encoding`` can be forced (and
    should be for Central-European single-byte files: detection prefers Windows-1252 when it cannot tell
    code pages apart).
    *Delimiter*: sniffed among ``,`` ``;`` tab and ``|`` from the first lines (quotes respected), unless
    forced. *Quotes*: Excel style (``"a, b"``, ``""`` for a quote inside quotes, line breaks inside quotes).
    Header names are stripped of surrounding spaces; an empty header name becomes ``column_<n>``.
Excel
    ``.xlsx``/``.xlsm``/``.xls``/``.ods`` through calamine (fastexcel). The first sheet unless ``sheet`` is
    given. Cells are read as text: dates as ``2024-03-01 00:00:00``, whole numbers without ``.0``.
Parquet
    ``.parquet``/``.pq``, columns as stored.

Row numbers
    Data rows are numbered from 1, the header not counted, as a spreadsheet shows them: an empty line or
    row counts (and is then skipped), a quoted value spanning several lines is one row. Problems with the
    file's structure (a row with the wrong number of fields) name the *line* as a text editor shows it.

Every failure is an :class:`~crmlib.errors.ImportDataError` whose message starts with ``[check]`` and names
the file, what is wrong and what to do. Checks: ``file_not_found``, ``unsupported_format``,
``empty_file``, ``header_only``, ``binary_file``, ``encoding``, ``mixed_encoding``, ``ragged_rows``,
``truncated_file``, ``bad_quotes``, ``duplicate_column``, ``corrupt_file``, ``sheet_not_found``.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import ImportDataError, suggest

__all__ = ["FORMATS", "FileData", "load_file", "read_file"]

#: file extension -> kind of reader
FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
    ".ods": "excel",
    ".parquet": "parquet",
    ".pq": "parquet",
}
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_CHARS = 64 * 1024
_MAGIC = {  # what a file really is, from its first bytes, when it is not text
    b"PK\x03\x04": "a zip archive (an .xlsx workbook is one: if it is, rename the file to .xlsx)",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls workbook (rename the file to .xls)",
    b"PAR1": "a Parquet file (rename the file to .parquet)",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x1f\x8b": "a gzip archive (decompress it first)",
    b"SQLite format 3": "an SQLite database (use it as a source: sqlite:///path)",
}


@dataclass(frozen=True)
class FileData:
    """A file as read: the frame and how it was read."""

    path: Path
    kind: str  # csv | excel | parquet
    frame: pl.DataFrame
    rows: pl.Series  # 1-based data row number of each row of ``frame`` (header not counted)
    encoding: str | None = None  # csv only
    delimiter: str | None = None  # csv only
    sheet: str | None = None  # excel only
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """``name (GB18030, semicolon-delimited)`` for reports."""
        bits = []
        if self.encoding == "utf-8-sig":
            bits.append("UTF-8 with BOM")
        elif self.encoding and self.encoding not in {"utf-8", "ascii"}:
            bits.append(self.encoding.upper())
        if self.delimiter and self.delimiter != ",":
            bits.append(f"{_DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))}-delimited")
        if self.sheet:
            bits.append(f"sheet {self.sheet!r}")
        bits.extend(self.notes)
        return f"{self.path.name} ({', '.join(bits)})" if bits else self.path.name


def _fail(path: Path | str, check: str, message: str, hint: str) -> ImportDataError:
    return ImportDataError(f"[{check}] file {path}: {message}. {hint}")


def read_file(
    path: str | Path, *, encoding: str | None = None, delimiter: str | None = None, sheet: str | None = None
) -> pl.DataFrame:
    """Read a CSV, Excel or Parquet file into a frame (strings for CSV and Excel). See the module doc."""
    return load_file(path, encoding=encoding, delimiter=delimiter, sheet=sheet).frame


def load_file(
    path: str | Path, *, encoding: str | None = None, delimiter: str | None = None, sheet: str | None = None
) -> FileData:
    """Read a file and say how it was read (:class:`FileData`). Raises :class:`ImportDataError`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise _fail(p, "file_not_found", "there is no such file", "Check the path (and the working directory).")
    if p.is_dir():
        raise _fail(p, "unsupported_format", "this is a folder, not a file", "Give the files in it one by one.")
    kind = FORMATS.get(p.suffix.lower())
    if kind is None:
        raise _fail(
            p,
            "unsupported_format",
            f"files ending in {p.suffix or '(no extension)'!r} cannot be imported",
            "Save it as CSV (UTF-8), Excel .xlsx or Parquet; supported extensions: "
            + ", ".join(sorted(FORMATS)) + ".",
        )
    if delimiter is not None and delimiter not in DELIMITERS and len(delimiter) != 1:
        raise _fail(p, "unsupported_format", f"delimiter {delimiter!r} is not one character", "Use , ; | or a tab.")
    if p.stat().st_size == 0:
        raise _fail(p, "empty_file", "the file is empty (0 bytes)",
                    "Export the data again; the export or copy that made this file wrote nothing.")
    if kind == "csv":
        data = _read_csv(p, encoding, delimiter)
    elif kind == "excel":
        data = _read_excel(p, sheet)
    else:
        data = _read_parquet(p)
    if data.frame.height == 0:
        raise _fail(p, "header_only", "the file has a header but no data rows",
                    "Export it again with the data (check the report's filters), or leave it out of the import.")
    return data


# ------------------------------------------------------------------------------------------------
# CSV
# ------------------------------------------------------------------------------------------------
def _decode(p: Path, raw: bytes, declared: str | None) -> tuple[str, str]:
    """Decode the bytes of a CSV file; returns (text, encoding name)."""
    if declared:
        try:
            codec = codecs.lookup(declared).name
        except LookupError:
            raise _fail(p, "encoding", f"{declared!r} is not an encoding Python knows",
                        "Use e.g. utf-8, gb18030, gbk, big5, shift_jis, cp1252 (or leave it out to detect).") from None
        if codec == "utf-8":
            codec = "utf-8-sig"
        try:
            return raw.decode(codec), declared
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            guess = _guess(raw)
            raise _fail(
                p,
                "encoding",
                f"it is not valid {declared}: line {line} has bytes {raw[exc.start:exc.start + 4]!r} that "
                f"{declared} cannot decode" + (f"; the file looks like {guess}" if guess else ""),
                "Remove the declared encoding (`encoding:` in the mapping) to detect it"
                + (f", declare `encoding: {guess}`" if guess else "")
                + ", or re-save the file as CSV UTF-8.",
            ) from None

    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(codec), codec
            except UnicodeDecodeError:
                raise _fail(p, "encoding", f"it starts like {codec.upper()} text but is not valid {codec.upper()}",
                            "Re-save the file as CSV UTF-8.") from None
    head = raw[:8192]
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise _fail(p, "binary_file", f"this is not a CSV text file: it is {what}",
                        "Export the data as CSV, or give the file its real extension.")
    if b"\x00" in head:
        raise _fail(p, "binary_file", "this is not a CSV text file: it holds binary data (NUL bytes)",
                    "Export the data again as CSV (UTF-8) or Excel .xlsx.")

    try:
        text = raw.decode("utf-8-sig")
        return text, ("utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "utf-8")
    except UnicodeDecodeError:
        pass
    _refuse_mixed(p, raw)
    try:
        text = raw.decode("gb18030")
        if _looks_chinese(text):
            return text, "gb18030"
    except UnicodeDecodeError:
        text = None
    guess = _guess(raw)
    if guess:
        try:
            return raw.decode(guess), guess
        except (UnicodeDecodeError, LookupError):
            pass
    if text is not None:  # valid GB18030 after all, even if unusual characters
        return text, "gb18030"
    bad = raw.decode("utf-8", errors="replace")
    line = bad.count("\n", 0, bad.find("\ufffd")) + 1
    raise _fail(p, "encoding", f"its encoding cannot be recognised (first undecodable bytes on line {line})",
                "Open it in Excel or a text editor and save it as CSV UTF-8, or declare the encoding "
                "(`encoding:` in the mapping file).")


def _guess(raw: bytes) -> str | None:
    from charset_normalizer import from_bytes

    results = from_bytes(raw[:200_000])
    best = results.best()
    if best is None:
        return None
    # Small files fit several single-byte code pages about equally well, and detection picks among them almost
    # at random (cp775, cp1250 for "Müller"). Windows-1252 (Western Excel) is by far the likeliest of them.
    if best.encoding.startswith(("cp12", "cp7", "cp8", "iso8859", "latin", "mac_")):
        try:
            raw.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return best.encoding


def _looks_chinese(text: str) -> bool:
    """True when the non-ASCII characters of a GB18030 decoding are mostly common (GB2312) characters.

    Text in another 8-bit encoding (Windows-1252 "Müller", say) often decodes as GB18030 too, but into
    rare characters; this tells the two apart so detection gets its chance.
    """
    wide = [c for c in text[:100_000] if ord(c) > 127]
    if not wide:
        return True
    common = sum(1 for c in wide if _in_gb2312(c))
    return common >= 0.8 * len(wide)


def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
        return True
    except UnicodeEncodeError:
        return False


def _refuse_mixed(p: Path, raw: bytes) -> None:
    """Refuse a file whose lines are partly UTF-8 (with non-ASCII text) and partly not."""
    good = bad = 0
    bad_lines: list[int] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            good += 1
        except UnicodeDecodeError:
            bad += 1
            if len(bad_lines) < 5:
                bad_lines.append(number)
    if good and bad:
        more = f" (first {len(bad_lines)} of {bad})" if bad > len(bad_lines) else ""
        raise _fail(
            p,
            "mixed_encoding",
            f"the file mixes encodings: {good} line(s) with non-ASCII text are UTF-8 but line(s) "
            f"{', '.join(map(str, bad_lines))}{more} are not (probably GBK/GB18030 rows pasted into a UTF-8 file)",
            "Re-export the rows from the source system as one CSV UTF-8 file, or fix those lines in a text editor.",
        )


def _sniff(p: Path, text: str) -> str:
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS:  # drop the last, probably cut, line
        sample = sample[: sample.rfind("\n") + 1] or sample
    best, best_score = ",", (-1.0, 0)
    for d in DELIMITERS:
        try:
            records = [r for r in csv.reader(io.StringIO(sample), delimiter=d) if r][:50]
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        consistent = sum(1 for r in records if len(r) == width) / len(records)
        score = (consistent, width)
        if score > best_score:
            best, best_score = d, score
    return best


def _header(p: Path, text: str, delimiter: str) -> list[str]:
    try:
        first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error as exc:
        raise _fail(p, "bad_quotes", f"the header line cannot be read ({exc})",
                    "Check the quotes in the first line.") from None
    names = [n.strip() for n in first]
    if not any(names):
        raise _fail(p, "empty_file", "the first line (the header) is empty",
                    "The first line must name the columns; remove empty lines above it.")
    names = [n or f"column_{i}" for i, n in enumerate(names, start=1)]
    dupes = [n for n, k in Counter(names).items() if k > 1]
    if dupes:
        raise _fail(p, "duplicate_column", f"the header names column(s) {', '.join(map(repr, dupes))} twice",
                    "Rename or remove one of each pair in the header.")
    return names


def _read_csv(p: Path, encoding: str | None, delimiter: str | None) -> FileData:
    text, used = _decode(p, p.read_bytes(), encoding)
    if not text.strip():
        raise _fail(p, "empty_file", "the file holds only blank lines", "Export the data again.")
    text = text.lstrip("\r\n")
    delim = delimiter or _sniff(p, text)
    names = _header(p, text, delim)
    frame = _fast_csv(text, delim, names)
    notes: tuple[str, ...] = ()
    if frame is None:
        frame, rows, notes = _careful_csv(p, text, delim, names)
    else:
        rows = pl.int_range(1, frame.height + 1, eager=True, dtype=pl.Int64).alias("__row")
    frame, rows = _drop_blank_rows(frame, rows)
    return FileData(p, "csv", frame, rows, encoding=used, delimiter=delim, notes=notes)


def _drop_blank_rows(frame: pl.DataFrame, rows: pl.Series) -> tuple[pl.DataFrame, pl.Series]:
    """Drop rows whose every value is empty (keeping the numbers of the others)."""
    if not frame.height or not frame.width:
        return frame, rows
    strings = [c for c, t in frame.schema.items() if t == pl.String]
    filled = [
        (pl.col(c).is_not_null() & (pl.col(c).str.strip_chars() != "")) if c in strings else pl.col(c).is_not_null()
        for c in frame.columns
    ]
    keep = frame.select(pl.any_horizontal(filled)).to_series()
    if keep.all():
        return frame, rows
    return frame.filter(keep), rows.filter(keep)


def _fast_csv(text: str, delim: str, names: list[str]) -> pl.DataFrame | None:
    """Parse with Arrow's reader; ``None`` when the file needs the careful reader (bad or multi-line rows)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    body = text.rstrip("\r\n")
    if re.search(r"\n[ \t]*\r?\n", body) or body.count('"') % 2:
        return None  # blank lines in the middle, or a quote left open: the careful reader sorts them out
    invalid = []

    def on_invalid(row) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pcsv.read_csv(
            io.BytesIO(body.encode("utf-8")),
            # Single-threaded: with Arrow's thread pool, a parse error left the process to abort at exit
            # ("terminate called without an active exception") about one run in ten (pyarrow 26, polars 2.1).
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 22, use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter=delim, newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    if invalid:
        return None
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if frame.height and frame.select(pl.any_horizontal(pl.all().str.contains("\n", literal=True).any())).item():
        return None  # a value spans lines: row and line numbers differ (and a quote may be unterminated)
    return frame


def _careful_csv(
    p: Path, text: str, delim: str, names: list[str]
) -> tuple[pl.DataFrame, pl.Series, tuple[str, ...]]:
    """Python's csv reader, record by record: exact line numbers for structural problems."""
    reader = csv.reader(io.StringIO(text), delimiter=delim, strict=True)
    width = len(names)
    records: list[list[str]] = []
    numbers: list[int] = []
    wrong: list[tuple[int, int, int]] = []  # (row, line, fields)
    row = 0
    start = 1
    try:
        next(reader)  # header (already read)
        start = reader.line_num + 1
        for record in reader:
            row += 1
            if record and (len(record) != width):
                wrong.append((row, start, len(record)))
            elif record:
                records.append(record)
                numbers.append(row)
            start = reader.line_num + 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise _fail(p, "truncated_file",
                        f"the file ends inside a quoted value that starts on line {start} (a \" is never closed)",
                        "The file is probably cut short (an interrupted download or copy): export it again. If a "
                        "value really holds a \", double it (\"\").") from None
        raise _fail(p, "bad_quotes", f"line {reader.line_num} has a misplaced quote ({exc})",
                    'Quote the whole value ("like, this") and double any quote inside it ("").') from None
    notes: tuple[str, ...] = ()
    if wrong and width > 1:
        # A report footer (Salesforce: title, "Copyright ...", "Confidential Information ..."): one-field lines
        # after a blank line that follows the last data row. Dropped, and said so.
        last = numbers[-1] if numbers else 0
        after = [w for w in wrong if w[0] > last]
        if after and len(after) == len(wrong) and all(w[2] == 1 for w in after) and after[0][0] > last + 1:
            wrong = []
            notes = (f"a footer of {len(after)} line(s) after the data ignored",)
    if wrong:
        last_row, last_line, last_fields = wrong[-1]
        if len(wrong) == 1 and last_row == row and last_fields < width and not text.endswith(("\n", "\r")):
            raise _fail(p, "truncated_file",
                        f"the last line ({last_line}) stops after {last_fields} of {width} fields and the file does "
                        "not end with a line break: it was cut in the middle of a row",
                        "Export or copy the file again completely.")
        lines = ", ".join(f"{line} ({fields} fields)" for _, line, fields in wrong[:5])
        more = f" (first 5 of {len(wrong)})" if len(wrong) > 5 else ""
        delim_name = _DELIMITER_NAMES.get(delim, repr(delim))
        raise _fail(
            p,
            "ragged_rows",
            f"the header has {width} fields but line(s) {lines}{more} do not",
            f"A value holding the delimiter ({delim_name}) must be in double quotes; fix or remove those lines, "
            "or export the file again.",
        )
    columns = list(zip(*records, strict=True)) if records else [() for _ in names]
    frame = pl.DataFrame({n: pl.Series(n, list(c), dtype=pl.String) for n, c in zip(names, columns, strict=True)})
    frame = frame.with_columns(pl.when(pl.col(n) != "").then(pl.col(n)).alias(n) for n in names)
    return frame, pl.Series("__row", numbers, dtype=pl.Int64), notes


# ------------------------------------------------------------------------------------------------
# Excel and Parquet
# ------------------------------------------------------------------------------------------------
def _read_excel(p: Path, sheet: str | None) -> FileData:
    import fastexcel

    try:
        workbook = fastexcel.read_excel(str(p))
    except Exception as exc:  # noqa: BLE001 - calamine raises its own error types
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(p, "corrupt_file", f"it cannot be opened as an Excel workbook ({detail})",
                    "Open it in Excel and save it again as .xlsx, or export the data as CSV UTF-8.") from None
    names = list(workbook.sheet_names)
    if sheet is not None and sheet not in names:
        raise _fail(p, "sheet_not_found", f"there is no sheet {sheet!r}.{suggest(sheet, names)}",
                    f"The sheets are: {', '.join(map(repr, names))}.")
    name = sheet if sheet is not None else (names[0] if names else None)
    if name is None:
        raise _fail(p, "empty_file", "the workbook has no sheets", "Export the data again.")
    try:
        loaded = workbook.load_sheet(name, dtypes="string")
        frame = pl.from_arrow(loaded.to_arrow())
    except Exception as exc:  # noqa: BLE001
        if "empty" in str(exc).lower() or "no rows" in str(exc).lower():
            frame = pl.DataFrame()
        else:
            raise _fail(p, "corrupt_file", f"sheet {name!r} cannot be read ({str(exc).splitlines()[0]})",
                        "Open it in Excel and save it again as .xlsx.") from None
    assert isinstance(frame, pl.DataFrame)
    if frame.width == 0:
        others = [n for n in names if n != name]
        hint = (f"Choose another sheet (`sheet:` in the mapping); the sheets are: {', '.join(map(repr, names))}."
                if others else "Export the data again.")
        raise _fail(p, "empty_file", f"sheet {name!r} is empty", hint)
    renamed = {}
    for i, c in enumerate(frame.columns, start=1):
        new = c.strip()
        if not new or re.fullmatch(r"__UNNAMED__\d+", new):
            new = f"column_{i}"
        renamed[c] = new
    dupes = [n for n, k in Counter(renamed.values()).items() if k > 1]
    if dupes:
        raise _fail(p, "duplicate_column", f"the header names column(s) {', '.join(map(repr, dupes))} twice",
                    "Rename or remove one of each pair in the header row.")
    frame = frame.rename(renamed).with_columns(pl.all().cast(pl.String))
    rows = pl.int_range(1, frame.height + 1, eager=True, dtype=pl.Int64).alias("__row")
    frame, rows = _drop_blank_rows(frame, rows)
    return FileData(p, "excel", frame, rows, sheet=name if sheet is not None or len(names) > 1 else None)


def _read_parquet(p: Path) -> FileData:
    try:
        frame = pl.read_parquet(p)
    except Exception as exc:  # noqa: BLE001 - polars and arrow raise several error types
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(p, "corrupt_file", f"it cannot be read as Parquet ({detail})",
                    "Write the file again (it may be incomplete), or export the data as CSV UTF-8.") from None
    rows = pl.int_range(1, frame.height + 1, eager=True, dtype=pl.Int64).alias("__row")
    return FileData(p, "parquet", frame, rows)
