"""Text encoding: decode a file's bytes, trusting byte-order marks, trying UTF-8 first and then
the legacy encodings real uploads turn out to be (GB18030, Windows-1252, others by their
characters), falling back to Latin-1; or with the encoding the user chose."""

from __future__ import annotations

import codecs

from studio.data.readers.files import SUPPORTED
from studio.data.text import IDEOGRAPHS, is_cjk, script_shares
from studio.errors import DataError

_ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "utf-32-le": "UTF-32",
    "utf-32-be": "UTF-32",
    "gb18030": "GB18030 (Chinese)",
    "cp1252": "Windows-1252 / Latin-1 (Western European)",
    "latin-1": "Latin-1 / ISO-8859-1",
    "iso8859-1": "Latin-1 / ISO-8859-1",
    "cp1251": "Windows-1251 (Cyrillic)",
    "cp932": "Shift-JIS (Japanese)",
    "shift_jis": "Shift-JIS (Japanese)",
    "big5": "Big5 (traditional Chinese)",
    "cp949": "CP949 / EUC-KR (Korean)",
}


def decode_text(raw: bytes, name: str, encoding: str | None = None) -> tuple[str, str, list[str]]:
    """Decode the bytes: with ``encoding`` when the user chose one (``data.encoding``), else by
    detection.

    Byte-order marks are trusted. Without one, UTF-8 is tried strictly; if it fails, the legacy
    encodings are ranked: GB18030 (Chinese Excel's default) and Windows-1252 (Western Excel's
    default) when the text they give looks like language, then what ``charset-normalizer`` finds
    when it gives a non-Latin script (Cyrillic, Japanese...), and last Latin-1, which defines every
    byte and so always reads: a file is never refused for its encoding, and the notice names the
    encoding used and shows a line as decoded, so a wrong guess is seen and overridden.
    """
    if encoding and encoding.strip().lower() not in ("", "auto"):
        return decode_as_chosen(raw, name, encoding.strip())
    if raw.startswith(b"\xef\xbb\xbf"):  # Excel's "CSV UTF-8": the BOM is not part of the data
        return _decode_as(raw[3:], "utf-8-sig", name, offset=3), "utf-8-sig", []
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if raw.startswith(bom):
            text = _decode_as(raw[len(bom):], codec, name, offset=len(bom))
            return text, codec, [f"{name}: decoded as {_ENCODING_NAMES[codec]} (it starts with a byte-order mark), not UTF-8"]
    codec = _bomless_utf16(raw)
    if codec:
        text = _decode_as(raw, codec, name, offset=0)
        return text, codec, [f"{name}: decoded as {_ENCODING_NAMES[codec]} (no byte-order mark), not UTF-8; check the characters in the preview"]

    nul = raw.find(b"\x00")
    if nul >= 0:  # text files never hold NUL bytes; binary files nearly always do
        raise DataError(f"file {name} looks binary (NUL byte at offset {nul})", hint=f"upload {SUPPORTED}")

    try:
        return raw.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as err:
        bad = err.start
    line = raw.count(b"\n", 0, bad) + 1
    where = f"first non-UTF-8 byte at offset {bad}, line {line}"
    for codec in ("gb18030", "cp1252"):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        if _plausible(codec, text, bad):
            return text, codec, [f"{name}: decoded as {label_of(codec)}, not UTF-8 ({where}); check the accents/characters "
                                 f"in the preview, and save the file as UTF-8 to be sure. {_sample(text, line)}"]
    found = _other_script(raw)
    if found:
        text, codec = found
        return text, codec, [f"{name}: decoded as {label_of(codec)}, not UTF-8 ({where}), as its characters suggest; "
                             f"check them in the preview (or choose the encoding: data.encoding). {_sample(text, line)}"]
    text = raw.decode("latin-1")  # every byte is a character in Latin-1: this always reads
    return text, "latin-1", [
        f"{name}: not UTF-8 ({where}) and its encoding could not be told for sure; read as {label_of('latin-1')}, where "
        f"every byte is a character. If characters look wrong, choose the file's encoding (the Data tab's encoding, "
        f"or data.encoding). {_sample(text, line)}"]


def label_of(codec: str) -> str:
    return _ENCODING_NAMES.get(codec, codec)


def decode_as_chosen(raw: bytes, name: str, encoding: str) -> tuple[str, str, list[str]]:
    """Decode with the encoding the user chose; a byte it cannot read is named, with its line."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"unknown encoding '{encoding}' for file {name}",
                        hint="use a name such as utf-8, gb18030, big5, shift_jis, cp1251, cp1252 or latin-1, or auto") from None
    if codec in ("utf-8", "utf-8-sig") and raw.startswith(b"\xef\xbb\xbf"):
        raw, codec = raw[3:], "utf-8-sig"
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(f"file {name} is not {label_of(codec)} text: the byte at offset {err.start} (line {line}) "
                        f"is not valid {label_of(codec)}", hint="choose another encoding, or auto to let the studio detect it") from None
    return text, codec, [f"{name}: decoded as {label_of(codec)}, as chosen"]


# Scripts that a legacy single- or double-byte encoding other than GB18030/Windows-1252 is for.
NON_LATIN = {"Cyrillic", "Greek", "Arabic", "Hebrew", "Thai", "Han", "Kana", "Hangul"}


def _other_script(raw: bytes) -> tuple[str, str] | None:
    """charset-normalizer's best guess, kept only when it gives text in a non-Latin script: for
    Latin text its guesses among the many Western code pages are no better than Latin-1."""
    from charset_normalizer import from_bytes

    best = from_bytes(raw[:262_144]).best()
    if best is None or best.encoding in ("utf_8", "ascii") or best.chaos > 0.2:
        return None
    try:
        text = raw.decode(best.encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    scripts = script_shares(ch for ch in text[:262_144] if ord(ch) > 127)
    if sum(share for script, share in scripts.items() if script in NON_LATIN) < 0.8:
        return None
    return text, codecs.lookup(best.encoding).name


def _sample(text: str, line: int) -> str:
    """The line of the first non-UTF-8 byte as decoded, shortened: what the user checks."""
    lines = text.split("\n")  # not splitlines(): Latin-1's 0x85 is a line break to it, not to the readers
    shown = lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"Line {line} reads: {shown!r}" if shown else ""


def _decode_as(raw: bytes, codec: str, name: str, offset: int) -> str:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as err:
        at = offset + err.start
        line = raw.count(b"\n", 0, err.start) + 1
        label = _ENCODING_NAMES[codec]
        raise DataError(
            f"file {name} is marked as {label} but the bytes at offset {at} (line {line}) are not valid {label}",
            hint="the file may be truncated or damaged; save it again as UTF-8",
        ) from None


def _bomless_utf16(raw: bytes) -> str | None:
    """UTF-16 without a byte-order mark: mostly-ASCII text has a NUL in every other byte."""
    sample = raw[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _plausible(codec: str, text: str, bad_offset: int) -> bool:
    """Does text decoded with a legacy codec look like language rather than byte soup?"""
    # Look at the start and around the first non-UTF-8 byte (byte and char offsets are close
    # enough for this), so a huge file is not scanned char by char.
    sample = text[:262_144]
    if bad_offset > 200_000:
        sample += text[max(0, bad_offset - 131_072): bad_offset + 131_072]
    controls = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or 0x7F <= ord(ch) < 0xA0)
    if controls > max(2, len(sample) // 1000):
        return False
    if codec == "gb18030":
        return _looks_chinese(sample)
    # Western text is mostly ASCII letters with some accented ones; Cyrillic, Greek or Chinese
    # bytes read as Windows-1252 give words made almost entirely of accented letters.
    letters = [ch for ch in sample if ch.isalpha()]
    accented = sum(1 for ch in letters if ord(ch) > 127)
    return bool(letters) and accented <= 0.4 * len(letters)


def _looks_chinese(text: str) -> bool:
    """GB18030 accepts many Latin-1 byte pairs too ('\u00e7\u00e3' becomes one CJK character), so
    decoding alone proves little. Real Chinese text is made of common (GB2312) characters standing
    in runs; misread Latin-1 gives single characters glued to Latin letters ('Fran\u00e7ois')."""
    wide = [i for i, ch in enumerate(text) if ord(ch) > 127]
    if not wide:
        return True
    common = ideographs = glued = 0
    for i in wide:
        ch = text[i]
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
        if not is_cjk(ch, IDEOGRAPHS):
            continue
        ideographs += 1
        before = text[i - 1] if i > 0 else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if (before.isascii() and before.isalpha()) or (after.isascii() and after.isalpha()):
            glued += 1
    return ideographs > 0 and common >= 0.8 * len(wide) and glued < 0.5 * ideographs
