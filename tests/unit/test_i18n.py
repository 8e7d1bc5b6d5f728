"""The studio's two languages: the same keys in both, every key the UI uses exists, the same
placeholders, and the language a browser gets."""

from __future__ import annotations

import re
import string
from pathlib import Path

from studio.ui import i18n

UI = Path(i18n.__file__).resolve().parent
WEB = UI.parent / "web"  # the sign-in page speaks both languages too
KEY_CALL = re.compile(r"""\bt(?:_md)?\(\s*(?:f?)["']([^"']+)["']""")  # t(key) and t_md(key) (studio.ui.markup)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def used_keys() -> dict[str, str]:
    keys = {}
    for path in sorted([*UI.glob("*.py"), *WEB.glob("*.py")]):
        for key in KEY_CALL.findall(path.read_text(encoding="utf-8")):
            keys[key] = path.name
    return keys


def test_both_languages_have_exactly_the_same_keys():
    en, zh = i18n.strings("en"), i18n.strings("zh")
    assert set(en) - set(zh) == set(), "missing in zh.json"
    assert set(zh) - set(en) == set(), "missing in en.json"
    assert all(value.strip() for value in [*en.values(), *zh.values()]), "an empty translation"


def test_every_key_the_ui_uses_exists_in_both_languages():
    keys = used_keys()
    assert len(keys) > 50  # the scan finds the tabs' keys
    dynamic = [key for key in keys if "{" in key]
    assert not dynamic, f"keys must be literal so this test can check them: {dynamic}"
    for lang in i18n.LANGUAGES:
        missing = {key: where for key, where in keys.items() if key not in i18n.strings(lang)}
        assert not missing, f"keys missing in {lang}.json: {missing}"


def test_no_key_is_left_unused():
    unused = set(i18n.strings("en")) - set(used_keys())
    assert not unused, f"keys no code uses: {sorted(unused)}"


def test_placeholders_match_between_languages():
    en, zh = i18n.strings("en"), i18n.strings("zh")
    for key in en:
        assert placeholders(en[key]) == placeholders(zh[key]), key
        assert i18n.t(key, "zh", **{name: "x" for name in placeholders(en[key])})


def test_the_chinese_texts_are_chinese():
    zh = i18n.strings("zh")
    untranslated = [key for key, text in zh.items()
                    if text == i18n.strings("en")[key] and re.search(r"[A-Za-z]{3}", text) and not key.endswith("top_p")]
    assert not untranslated, untranslated


def test_the_browser_language_picks_the_page_language():
    assert i18n.pick_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert i18n.pick_language("zh-TW") == "zh"
    assert i18n.pick_language("fr-FR,fr;q=0.9,en-US;q=0.8") == "en"
    assert i18n.pick_language("de-DE") == "en"
    assert i18n.pick_language(None) == "en"
    assert i18n.t("app.tab_data", "zh") == "数据"
    assert i18n.t("app.header", "zh", title="T").startswith("# T")
    assert i18n.t("no.such.key", "zh") == "no.such.key"


def test_outside_a_request_handlers_speak_english():
    from studio.ui.common import messages_html

    assert i18n.current_lang() == "en"
    assert "<b>Problem:</b>" in messages_html([("error", "x")])


def test_building_the_app_registers_every_translated_component(tmp_path):
    import gradio as gr

    from studio.ui.app import build_app, make_services

    app = build_app(make_services(tmp_path / "ws"))
    translator = i18n.Translator(app.blocks)
    labels = {getattr(block, "label", None) for block in translator.components}
    assert {"Data", "Train", "Runs", "Evaluate", "Playground", "Save as a named dataset"} <= labels
    updates = translator.updates("zh")
    assert len(updates) == len(translator.components) > 50
    zh_labels = {u.get("label") for u in updates}
    assert {"数据", "训练", "运行记录", "评估", "试用"} <= zh_labels
    assert gr.update(label="x")["label"] == "x"


def test_one_english_text_has_one_chinese_text():
    # The page finds a component's key by the English text it was built with.
    en, zh = i18n.strings("en"), i18n.strings("zh")
    seen: dict[str, tuple[str, str]] = {}
    for key, text in en.items():
        if not re.sub(r"\{[^{}]*\}", "", text).strip():
            continue  # only a frame for a message from below (e.g. "{message}"): never a component's text
        if text in seen:
            other, translated = seen[text]
            assert zh[key] == translated, f"{key} and {other} are both {text!r} in English but differ in Chinese"
        seen.setdefault(text, (key, zh[key]))
