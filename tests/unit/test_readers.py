"""read_table: formats, encodings, delimiters, and a readable DataError for every broken file."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studio.data.readers import Table, read_table
from studio.errors import DataError

HUGE = "x" * 1_000_050

# Each case: file name, raw content, and either the error fragments the message must hold, or
# what a successful read must produce (encoding, delimiter, note fragments, rows).
BROKEN = [
    pytest.param("blob.csv", b"text,label\nab\x00cd,x\n", {"error": ["blob.csv", "looks binary", "NUL byte at offset 13"]}, id="binary-nul"),
    pytest.param(
        "soup.csv",
        b"text,label\n" + bytes(range(0x80, 0x100)) * 4 + b",x\n",
        # Latin-1 defines every byte: a file is never refused for its encoding; the notice says
        # the guess is unsure, shows the line and how to choose.
        {"encoding": "latin-1", "notes": ["soup.csv", "not UTF-8", "offset 11", "line 2", "could not be told",
                                          "Latin-1", "Line 2 reads:", "data.encoding"],
         "rows": [{"text": bytes(range(0x80, 0x100)).decode("latin-1") * 4, "label": "x"}]},
        id="undecodable-bytes-read-as-latin-1",
    ),
    pytest.param(
        "tweets.csv",
        # ISO-8859-1 with bytes Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D).
        b"text,label\nso happy today caf\xe9 \x81\x8d,pos\nna\xefve r\xe9sum\xe9 \x8f\x90\x9d,neg\n",
        {"encoding": "latin-1", "notes": ["tweets.csv", "Latin-1", "Line 2 reads: 'so happy today café"],
         "rows": [{"text": "so happy today café \x81\x8d", "label": "pos"}, {"text": "naïve résumé \x8f\x90\x9d", "label": "neg"}]},
        id="latin-1-beyond-windows-1252",
    ),
    pytest.param(
        "russian.csv",
        "text,label\nПривет мир как дела у тебя сегодня,pos\nПока до завтра друзья,neg\n".encode("cp1251"),
        {"encoding": "cp1251", "notes": ["russian.csv", "Windows-1251 (Cyrillic)", "as its characters suggest"],
         "rows": [{"text": "Привет мир как дела у тебя сегодня", "label": "pos"}, {"text": "Пока до завтра друзья", "label": "neg"}]},
        id="cyrillic-code-page-detected",
    ),
    pytest.param(
        "wide.csv",
        "text,label\nhéllo,pos\n".encode("utf-16"),
        {"encoding": "utf-16-le", "notes": ["UTF-16", "byte-order mark"], "rows": [{"text": "héllo", "label": "pos"}]},
        id="utf16-bom",
    ),
    pytest.param(
        "wide-nobom.tsv",
        "text\tlabel\nhi\tpos\n".encode("utf-16-le"),
        {"encoding": "utf-16-le", "delimiter": "\t", "notes": ["UTF-16", "no byte-order mark"], "rows": [{"text": "hi", "label": "pos"}]},
        id="utf16-no-bom",
    ),
    pytest.param(
        "chinese.csv",
        "text,label\n我喜欢这部电影,正面\n太糟糕了，浪费时间,负面\n".encode("gb18030"),
        {
            "encoding": "gb18030",
            "notes": ["chinese.csv", "decoded as GB18030", "not UTF-8", "line 2"],
            "rows": [{"text": "我喜欢这部电影", "label": "正面"}, {"text": "太糟糕了，浪费时间", "label": "负面"}],
        },
        id="gb18030-chinese",
    ),
    pytest.param(
        "french.csv",
        "text,label\ncafé crème,pos\nété pourri,neg\n".encode("latin-1"),
        {
            "encoding": "cp1252",
            "notes": ["french.csv", "Latin-1", "Windows-1252", "offset 14", "check the accents"],
            "rows": [{"text": "café crème", "label": "pos"}, {"text": "été pourri", "label": "neg"}],
        },
        id="latin1-french",
    ),
    pytest.param(
        "portuguese.csv",
        "text,label\nnação coração,pos\nações,neg\n".encode("latin-1"),
        {"encoding": "cp1252", "rows": [{"text": "nação coração", "label": "pos"}, {"text": "ações", "label": "neg"}]},
        id="latin1-not-mistaken-for-gb18030",
    ),
    pytest.param("empty.csv", b"", {"error": ["empty.csv", "is empty"]}, id="empty-file"),
    pytest.param("blank.csv", b"\n  \n\r\n", {"error": ["blank.csv", "is empty"]}, id="blank-lines-only"),
    pytest.param("header.csv", b"text,label\n", {"error": ["header.csv", "header (text, label)", "no data rows"]}, id="header-only"),
    pytest.param(
        "ragged.csv",
        b'text,label\n"two\nlines",a\nok,b\nhello, world,c\nfine,d\n',
        {"error": ["ragged.csv", "line 5", "expected 2 fields", "found 3", "double quotes"]},
        id="ragged-row-line-number",
    ),
    pytest.param(
        "ragged-crlf.csv",
        b"text,label\r\n\r\nok,b\r\nx,y,z\r\n",
        {"error": ["ragged-crlf.csv", "line 4", "found 3"]},
        id="ragged-row-crlf-blank-line",
    ),
    pytest.param(
        "bad.jsonl",
        b'{"text": "a", "label": 1}\n\n{"text": "b", "label": 2,}\n',
        {"error": ["bad.jsonl", "line 3", "not valid JSON", "column 26"]},
        id="jsonl-bad-line",
    ),
    pytest.param(
        "list.jsonl",
        b'{"text": "a"}\n["b", 2]\n',
        {"error": ["list.jsonl", "line 2", "expected a JSON object", "found an array"]},
        id="jsonl-non-object-line",
    ),
    pytest.param(
        "settings.json",
        b'{"lr": 0.1, "epochs": 3}',
        {"error": ["settings.json", "keys lr, epochs", "not an array of records"]},
        id="json-object-not-array",
    ),
    pytest.param("number.json", b"42", {"error": ["number.json", "holds a number"]}, id="json-scalar"),
    pytest.param(
        "items.json",
        b'[{"text": "a"}, "b"]',
        {"error": ["items.json", "item 2", "a string, not an object"]},
        id="json-array-with-non-object",
    ),
    pytest.param(
        "broken.json",
        b'[{"text": "a"},\n {"text": "b",}]',
        {"error": ["broken.json", "line 2", "not valid JSON"]},
        id="json-syntax-error",
    ),
    pytest.param("deep.json", b"[" * 200_000, {"error": ["deep.json", "nested too deeply"]}, id="json-too-deep"),
    pytest.param("none.json", b"[]", {"error": ["none.json", "empty array"]}, id="json-empty-array"),
    pytest.param(
        "huge.csv",
        ('text,label\nok,a\n"' + HUGE + '",b\n').encode(),
        {"error": ["huge.csv", "line 3", "longer than 1,000,000 characters"]},
        id="huge-field",
    ),
    pytest.param(
        "unclosed.csv",
        b'text,label\nok,a\n"never closed,b\nmore,c\n',
        {"error": ["unclosed.csv", "line 3", "never closed", "closing quote"]},
        id="unclosed-quote",
    ),
    pytest.param(
        "dupes.csv",
        b"text,label,text, label\n1,2,3,4\n",
        {"error": ["dupes.csv", "duplicate column names", "'text' (columns 1, 3)", "'label' (columns 2, 4)"]},
        id="duplicate-columns",
    ),
    pytest.param("fake.parquet", b"text,label\nx,y\n", {"error": ["fake.parquet", "not a Parquet file", ".csv extension"]}, id="parquet-not-parquet"),
    pytest.param("cut.parquet", b"PAR1 truncated garbage", {"error": ["cut.parquet", "could not be read as Parquet"]}, id="parquet-truncated"),
    pytest.param("book.csv", b"PK\x03\x04\x14\x00rest-of-zip", {"error": ["book.csv", "ZIP archive", "CSV UTF-8"]}, id="xlsx-renamed"),
    pytest.param(
        "euro.csv",
        b"text;label\nbonjour, le monde;pos\nau revoir;neg\n",
        {"delimiter": ";", "notes": ["semicolons"], "rows": [{"text": "bonjour, le monde", "label": "pos"}, {"text": "au revoir", "label": "neg"}]},
        id="semicolon-sniffed",
    ),
    pytest.param(
        "quoted.csv",
        b'text,label\n"line one\nline two, with comma",a\n"say ""hi""",b\n',
        {"delimiter": ",", "rows": [{"text": "line one\nline two, with comma", "label": "a"}, {"text": 'say "hi"', "label": "b"}]},
        id="quoted-newlines-and-delimiters",
    ),
    pytest.param(
        "bom.csv",
        b"\xef\xbb\xbftext,label\nhi,pos\n",
        {"encoding": "utf-8-sig", "rows": [{"text": "hi", "label": "pos"}]},
        id="utf8-bom-stripped",
    ),
]


@pytest.mark.parametrize("file_name, content, expect", BROKEN)
def test_broken_and_odd_files(tmp_path, file_name, content, expect):
    path = tmp_path / file_name
    path.write_bytes(content)
    if "error" in expect:
        with pytest.raises(DataError) as caught:
            read_table(path)
        message = str(caught.value)
        for fragment in expect["error"]:
            assert fragment in message, f"{fragment!r} not in {message!r}"
        _assert_no_traceback(message)
        return
    table = read_table(path)
    assert isinstance(table, Table)
    if "encoding" in expect:
        assert table.encoding == expect["encoding"]
    if "delimiter" in expect:
        assert table.delimiter == expect["delimiter"]
    joined = "\n".join(table.notes)
    for fragment in expect.get("notes", []):
        assert fragment in joined, f"{fragment!r} not in notes {table.notes!r}"
    assert table.df.to_dict("records") == expect["rows"]


def _assert_no_traceback(message: str) -> None:
    assert "Traceback" not in message
    assert 'File "' not in message
    assert "Error(" not in message and "Exception" not in message


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(DataError) as caught:
        read_table(tmp_path / "nowhere.csv")
    assert "nowhere.csv" in str(caught.value) and "not found" in str(caught.value)
    _assert_no_traceback(str(caught.value))


def test_size_limit(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("text,label\n" + "hello,pos\n" * 200)
    with pytest.raises(DataError, match=r"big\.csv is 2\.0 KiB, over the 1\.0 KiB limit"):
        read_table(path, max_bytes=1024)
    assert len(read_table(path).df) == 200


def test_field_limit_parameter_and_global_limit_restored(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("text,label\nshort,a\n" + "y" * 600 + ",b\n")
    before = csv.field_size_limit()
    with pytest.raises(DataError, match=r"long\.csv, line 3: a field is longer than 500 characters"):
        read_table(path, max_field_chars=500)
    assert csv.field_size_limit() == before
    assert read_table(path).df["text"][1] == "y" * 600


def test_values_stay_exact_strings(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("id,label,score\n001,NA,1e5\n002,,  7 \n")
    df = read_table(path).df
    assert df["id"].tolist() == ["001", "002"]
    assert df["label"].tolist() == ["NA", ""]  # empty cells are '' and count as missing downstream
    assert df["score"].tolist() == ["1e5", "  7 "]


def test_short_rows_are_padded_with_a_note(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("text,label,source\na,x\nb,y,web\nc\n")
    table = read_table(path)
    assert table.df.to_dict("records") == [
        {"text": "a", "label": "x", "source": ""},
        {"text": "b", "label": "y", "source": "web"},
        {"text": "c", "label": "", "source": ""},
    ]
    assert any("2 row(s) have fewer than 3 fields" in n and "line 2" in n for n in table.notes)


def test_trailing_separators_are_dropped(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("text,label,\na,x,\nb,y,\n")
    table = read_table(path)
    assert list(table.df.columns) == ["text", "label"]
    assert any("dropped 1 empty column" in n for n in table.notes)


def test_header_names_are_stripped_and_blank_ones_named(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text(" text ,,label\na,1,x\n")
    table = read_table(path)
    assert list(table.df.columns) == ["text", "column_2", "label"]
    assert any("column_2" in n for n in table.notes)


def test_jsonl_keeps_nested_values_and_types(tmp_path):
    rows = [
        {"text": "a", "labels": ["x", "y"], "spans": [{"start": 0, "end": 1, "label": "PER"}], "n": 1},
        {"text": "b", "labels": [], "n": 2},
    ]
    path = tmp_path / "nested.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    table = read_table(path)
    assert table.format == "jsonl"
    df = table.df
    assert df["labels"].tolist() == [["x", "y"], []]
    assert df["spans"].tolist() == [[{"start": 0, "end": 1, "label": "PER"}], None]
    assert df["n"].tolist() == [1, 2] and all(isinstance(v, int) for v in df["n"].tolist())


def test_json_missing_keys_do_not_turn_ints_into_floats(tmp_path):
    path = tmp_path / "partial.json"
    path.write_text(json.dumps([{"text": "a", "label": 1}, {"text": "b"}]))
    assert read_table(path).df["label"].tolist() == [1, None]


def test_json_records_under_one_key(tmp_path):
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"version": 2, "data": [{"text": "a", "label": "x"}]}))
    table = read_table(path)
    assert table.df.to_dict("records") == [{"text": "a", "label": "x"}]
    assert any("'data'" in n for n in table.notes)


def test_json_file_holding_json_lines(tmp_path):
    path = tmp_path / "lines.json"
    path.write_text('{"text": "a"}\n{"text": "b"}\n')
    table = read_table(path)
    assert table.df["text"].tolist() == ["a", "b"]
    assert any("JSONL" in n for n in table.notes)


@pytest.mark.parametrize(
    "content, fmt, delimiter",
    [
        ('{"text": "a"}\n{"text": "b"}\n', "jsonl", None),
        ('[{"text": "a"}, {"text": "b"}]', "json", None),
        ("text\tlabel\na\tx\nb\ty\n", "tsv", "\t"),
        ("text|label\na|x\nb|y\n", "csv", "|"),
    ],
    ids=["jsonl", "json", "tab", "pipe"],
)
def test_txt_and_unknown_extensions_are_sniffed(tmp_path, content, fmt, delimiter):
    for name in ("data.txt", "export"):
        path = tmp_path / name
        path.write_text(content)
        table = read_table(path)
        assert (table.format, table.delimiter) == (fmt, delimiter)
        assert table.df["text"].tolist() == ["a", "b"]


def test_single_column_text_with_commas(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("text\nHello, world\nplain line\n")
    table = read_table(path)
    assert table.delimiter is None
    assert table.df["text"].tolist() == ["Hello, world", "plain line"]


def test_tsv_keeps_bare_quotes(tmp_path):
    path = tmp_path / "reviews.tsv"
    path.write_text('text\tlabel\n"Great" movie\tpos\nsaid "no"\tneg\n')
    assert read_table(path).df["text"].tolist() == ['"Great" movie', 'said "no"']


def test_excel_sep_line(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("sep=;\ntext;label\na,b;x\nc;d;e\n")
    with pytest.raises(DataError, match=r"excel\.csv, line 4: expected 2 fields"):
        read_table(path)


def test_parquet_with_nested_column(tmp_path):
    path = tmp_path / "data.parquet"
    table = pa.table({"text": ["a", "b"], "labels": [["x"], ["x", "y"]], "n": [1, 2]})
    pq.write_table(table, path)
    result = read_table(path)
    assert (result.format, result.encoding, result.delimiter) == ("parquet", None, None)
    assert result.df["labels"].tolist() == [["x"], ["x", "y"]]
    assert result.df["n"].tolist() == [1, 2]
    # recognised by its bytes even without the extension
    renamed = tmp_path / "download"
    renamed.write_bytes(path.read_bytes())
    assert read_table(renamed).format == "parquet"


def test_parquet_without_rows(tmp_path):
    path = tmp_path / "none.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), path)
    with pytest.raises(DataError, match=r"none\.parquet has columns \(text\) but no rows"):
        read_table(path)


def test_a_chosen_encoding_wins_over_detection_and_a_wrong_one_is_named(tmp_path):
    path = tmp_path / "russian.csv"
    path.write_bytes("text,label\nПривет,pos\n".encode("cp1251"))
    table = read_table(path, encoding="cp1251")
    assert table.df["text"].tolist() == ["Привет"] and table.encoding == "cp1251"
    assert any("as chosen" in note for note in table.notes)
    # Latin-1 reads every byte: chosen, it gives what the user asked for.
    assert read_table(path, encoding="latin-1").df["text"].tolist() == ["Ïðèâåò"]
    with pytest.raises(DataError, match=r"russian.csv is not UTF-8 text: the byte at offset 11 \(line 2\)"):
        read_table(path, encoding="utf-8")
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_table(path, encoding="klingon")
