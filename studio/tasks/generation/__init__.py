"""Text generation: instruction -> response, chat, summarization, translation, question answering.

Three input shapes, all normalized to one conversation per row (``messages``: a list of
``{"role", "content"}`` with roles system / user / assistant):

* ``prompt`` / ``completion`` (question/answer, document/summary, source/translation...);
* Alpaca-style ``instruction`` / ``input`` (optional) / ``output``;
* chat: a ``messages`` list per row (JSONL, or JSON text in a CSV cell), multi-turn; ShareGPT's
  ``{"from": "human"|"gpt", "value"}`` turns are read too.

The user maps columns with ``data.columns`` (roles below); unmapped, the format is detected from
the column names. ``task.prompt_template`` shapes the user message of single-turn rows and
``task.system_prompt`` is put first in every conversation that has no system message.

The architecture comes from the backbone's ``config.json`` (``is_encoder_decoder``), never from
the user:

* decoder-only (causal LM): the conversation is rendered with the tokenizer's chat template, or
  ``DEFAULT_CHAT_TEMPLATE`` when it has none (that template is then saved with the model). The
  labels are -100 everywhere except the assistant turns (their text and end-of-turn token), so
  the loss covers only what the model must learn to write; padding is -100 too.
* encoder-decoder (seq2seq: T5, BART, Marian, mBART): the conversation before the last assistant
  turn is the source, that turn the target.

During training only the loss is evaluated. After training the test split gets its loss and
perplexity, and (up to ``generation.max_eval_examples`` rows) generations scored with ROUGE-1/2/L,
BLEU, chrF and exact match; the worker runs the same evaluation on the base model first
(``compare_with_base``), so the report shows what fine-tuning changed.

The package, one job a module:

* ``formats``: the input shapes, their column names, and one row's chat messages parsed and checked;
* ``chat``: a conversation as the model reads it (chat template, label masking, truncation,
  seq2seq source/target) and the collator that pads it;
* ``decoding``: batched generation with the run's decoding settings;
* ``metrics``: ROUGE, BLEU, chrF and exact match of generations against references;
* ``options``: the task's keys under ``task:`` (system prompt, prompt template) and their checks;
* ``task``: the ``TextGeneration`` task that ties them together, registered on import.

The architecture itself (causal or seq2seq) is read by ``studio.models.architecture``.
"""

from studio.tasks.generation import task  # noqa: F401  (registers the task)
