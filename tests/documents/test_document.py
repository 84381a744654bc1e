"""Document: the fields every stage shares, language precedence, drop marks, record form."""

from eurollm_jax.documents import Document, ReaderConfig, ShardWriter, read_documents


def test_positional_fields_and_language_precedence():
    doc = Document("a", "Bonġu")  # the filter's (id, text, metadata) form
    assert (doc.id, doc.text, doc.metadata, doc.messages, doc.lang) == (
        "a", "Bonġu", {}, None, None)
    assert doc.language == "unknown"
    doc.lang = "mt"  # declared by the input record
    assert doc.language == "mt"
    doc.metadata["language"] = "it"  # language ID's label wins over the declaration
    assert doc.language == "it"


def test_dropped_and_record_round_trip(tmp_path):
    doc = Document("7", "some text", {"url": "u", "lang": "en"}).dropped("c4", "lorem")
    assert doc.drop_reason == "c4:lorem"
    record = doc.to_record()
    assert record == {"id": "7", "text": "some text", "drop_reason": "c4:lorem",
                      "metadata": {"url": "u", "lang": "en"}}
    chat = Document("c", None, {"lang": "mt"}, messages=[{"role": "user", "content": "Kif int?"}])
    assert chat.to_record()["messages"] == chat.messages
    path = str(tmp_path / "docs.jsonl")
    with ShardWriter(path) as w:
        w.write(doc.to_record())
        w.write(chat.to_record())
    back = list(read_documents(path))
    # drop_reason is not metadata: re-reading a dropped shard gives fresh documents, and the
    # declared language is found in the metadata the record form nests it in.
    assert (back[0].id, back[0].text, back[0].lang, back[0].drop_reason) == (
        "7", "some text", "en", None)
    assert back[0].metadata == {"url": "u", "lang": "en"} and back[0].line == 1
    # A text-less conversation is bad input for a text reader, and the right input for SFT.
    assert back[1].drop_reason == "input:missing_text"
    sft = list(read_documents(path, ReaderConfig(kind="sft")))
    assert sft[0].drop_reason == "input:missing_messages"
    assert sft[1].messages == chat.messages and sft[1].lang == "mt" and sft[1].text is None
    assert "messages" not in sft[1].metadata
