"""Token classification: named entities and other BIO tagging (chunking, slot filling).

Three input shapes, all normalized to one row per sentence with ``tokens`` (words), ``tags``
(one IOB2 tag per word), ``text`` and ``offsets`` (each word's character span in ``text``):

* CoNLL-style text: ``token<TAB or space>tag`` per line (extra middle columns ignored: the first
  column is the token, the last the tag), a blank line between sentences, ``-DOCSTART-`` skipped;
* a table (JSONL, CSV...) with a ``tokens`` list and a ``tags`` list per row;
* a table with raw ``text`` and character-offset entity spans ``[{"start", "end", "label"}]``
  (or ``[start, end, label]`` triples), the shape annotation tools export. The text is split into
  words at spaces and punctuation (each CJK character is a word) and the spans become BIO tags.

Tags are read as IOB2 (BIO); IOB1, BIOES and BILOU files are converted to IOB2. An ``I-X`` that
does not continue an ``X`` entity is read as the start of a new one (``B-X``), as the evaluation
(seqeval's default mode) would read it anyway, and counted in a warning.

Words are split into the backbone's sub-tokens; only the first sub-token of a word carries the
label, the others and the special tokens get -100 (ignored by the loss). A sentence longer than
``max_length`` sub-tokens is cut into overlapping windows, never truncated: each word is labeled
(and predicted) in exactly one window, the one where it has the most context on both sides.

The package, one job a module:

* ``cells``: list and number cells of a user's table read as values, and values quoted in problems;
* ``tags``: one BIO-family tag read, a file's tag scheme detected and converted to IOB2, repaired;
* ``conll``: CoNLL-style text files recognised and parsed into one row per sentence;
* ``spans``: raw text split into words with character offsets, entity spans read and turned into tags;
* ``normalize``: the rows of each input shape as one row per sentence (tokens, tags, text, offsets);
* ``windows``: words encoded as sub-tokens, long sentences cut into overlapping windows;
* ``metrics``: entity-level scores of tag sequences (seqeval);
* ``task``: the ``TokenClassification`` task that ties them together, registered on import.
"""

from studio.tasks.tokens import task  # noqa: F401  (registers the task)
