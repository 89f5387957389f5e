"""POST /api/chat through HTTP on the embedded parts with the offline model: the stream contract."""

from __future__ import annotations

import json
import re

from tests.utils.app import CHAT_QUESTION, answer_text, chat_lines, running_app

HEX16 = re.compile(r"^[0-9a-f]{16}$")
LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


async def test_stream_contract_grounded_cited_answer(seeded_settings):
    async with running_app(seeded_settings) as client:
        async with client.stream("POST", "/api/chat", json={"message": CHAT_QUESTION}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/x-ndjson")
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-accel-buffering"] == "no"
            lines = [json.loads(raw) async for raw in response.aiter_lines() if raw.strip()]

    types = [line["type"] for line in lines]
    assert types[0] == "metadata" and types[-1] == "complete"
    assert HEX16.match(lines[0]["span_id"]) and lines[-1]["span_id"] == lines[0]["span_id"]
    assert lines[0]["timestamp"].endswith("Z") and lines[0]["conversation_id"]
    assert "error" not in types
    call = next(line for line in lines if line["type"] == "tool_call")
    assert call["name"] == "search_knowledge_base" and call["content"]
    output = next(line for line in lines if line["type"] == "tool output")
    assert output["sources"] and all({"title", "url", "score"} <= set(s) for s in output["sources"])
    assert types.index("tool_call") < types.index("tool output") < types.index("content")
    assert types.count("content") > 3  # streamed in pieces, not one blob

    answer = answer_text(lines)
    cited = {url for _, url in LINK.findall(answer)}
    returned = {s["url"] for s in output["sources"]}
    assert cited, answer
    assert cited <= returned
    assert "IChatClient" in answer or "Microsoft.Extensions.AI" in answer
    assert "```csharp" in answer  # a "how do I" question gets the C# example from the source


async def test_off_topic_question_says_i_dont_know(seeded_settings):
    async with running_app(seeded_settings) as client:
        status, lines = await chat_lines(client, {"message": "What is the best recipe for a vegetarian lasagna?"})
    assert status == 200
    answer = answer_text(lines)
    assert "I don't know" in answer
    assert not LINK.search(answer)
    assert lines[-1]["type"] == "complete"


async def test_validation_errors_are_clear_4xx(seeded_settings):
    async with running_app(seeded_settings) as client:
        empty = await client.post("/api/chat", json={"message": "   "})
        assert empty.status_code == 400 and "empty" in empty.json()["detail"].lower()
        bad_role = await client.post("/api/chat", json={"message": "hi", "history": [{"role": "system", "content": "x"}]})
        assert bad_role.status_code == 422
        assert "history" in str(bad_role.json()["detail"])
        too_long = await client.post("/api/chat", json={"message": "x" * 4001})
        assert too_long.status_code == 422
        # a long transcript is not an error: the server keeps the newest turns within its budget
        long_history = await client.post("/api/chat", json={"message": "hi", "history": [{"role": "user", "content": "a"}] * 51})
        assert long_history.status_code == 200 and '"type": "complete"' in long_history.text
        not_json = await client.post("/api/chat", content=b"{nope", headers={"content-type": "application/json"})
        assert not_json.status_code == 422
        missing = await client.post("/api/chat", json={"history": []})
        assert missing.status_code == 422
        bad_conv = await client.post("/api/chat", json={"message": "hi", "conversation_id": "../../etc"})
        assert bad_conv.status_code == 422
        for response in (bad_role, too_long, not_json):
            assert "Traceback" not in response.text


async def test_production_requires_a_registered_enabled_key(tmp_path, seeded_data_dir):
    from services.storage.database import USERS
    from tests.utils.app import copy_seeded_data_dir, make_settings

    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    settings = make_settings(tmp_path, environment="production")
    async with running_app(settings) as client:
        db = client.app.state.services.database
        await db[USERS].insert_one({"_id": "good-key"})
        await db[USERS].insert_one({"_id": "off-key", "is_enabled": False})
        payload = {"message": CHAT_QUESTION}
        assert (await client.post("/api/chat", json=payload)).status_code == 401
        assert (await client.post("/api/chat", json={**payload, "magic_key": "nope"})).status_code == 403
        assert (await client.post("/api/chat", json={**payload, "magic_key": "off-key"})).status_code == 403
        status, lines = await chat_lines(client, {**payload, "magic_key": "good-key"})
        assert status == 200 and lines[-1]["type"] == "complete"


async def test_development_skips_the_key(seeded_settings):
    async with running_app(seeded_settings) as client:
        status, lines = await chat_lines(client, {"message": CHAT_QUESTION, "magic_key": "anything"})
    assert status == 200 and lines[-1]["type"] == "complete"


async def test_conversation_is_stored_and_continued(seeded_settings):
    async with running_app(seeded_settings) as client:
        _, first = await chat_lines(client, {"message": "What is Semantic Kernel?"})
        conversation_id = first[0]["conversation_id"]
        _, second = await chat_lines(client, {"message": "How do I add plugins to it?", "conversation_id": conversation_id})
        assert second[0]["conversation_id"] == conversation_id
        # the follow-up's search borrowed the earlier question's subject
        call = next(line for line in second if line["type"] == "tool_call")
        assert "Semantic Kernel" in call["arguments"]
        response = await client.get(f"/api/conversations/{conversation_id}")
        assert response.status_code == 200
        turns = response.json()["turns"]
        assert [t["user"] for t in turns] == ["What is Semantic Kernel?", "How do I add plugins to it?"]
        assert turns[1]["span_id"] == second[0]["span_id"] and turns[1]["assistant"] == answer_text(second)
        assert (await client.get("/api/conversations/unknown-conversation")).status_code == 404


async def test_history_from_the_request_starts_the_conversation(seeded_settings):
    history = [{"role": "user", "content": "Tell me about ML.NET AutoML"},
               {"role": "assistant", "content": "AutoML picks trainers for you."}]
    async with running_app(seeded_settings) as client:
        _, lines = await chat_lines(client, {"message": "How do I use it from C#?", "history": history})
        call = next(line for line in lines if line["type"] == "tool_call")
    assert "AutoML" in call["arguments"]


async def test_filters_narrow_retrieval(seeded_settings):
    async with running_app(seeded_settings) as client:
        kb = client.app.state.services.knowledge_base
        unfiltered = await kb.search("train a model", k=8)
        filtered = await kb.search("train a model", filters={"aiLibrary": "ML.NET"}, k=8)
        assert filtered and all("ML.NET" in p.tags for p in filtered)
        assert {p.url for p in filtered} != {p.url for p in unfiltered} or all("ML.NET" in p.tags for p in unfiltered)
        net = await kb.search("chat client", filters={"dotnetVersion": "8"}, k=8)
        assert net and all(".NET 8" in p.tags for p in net)
        mlnet_urls = {d["source_url"] for d in await client.app.state.services.database["document_chunks"]
                      .find({"ai_libraries": "ML.NET"}, {"source_url": 1}).to_list()}
        _, lines = await chat_lines(client, {"message": "How do I train a model?", "filters": {"aiLibrary": "ml.net"}})
    sources = next(line for line in lines if line["type"] == "tool output")["sources"]
    assert sources and {s["url"] for s in sources} <= mlnet_urls


async def test_offline_model_reads_its_best_article_before_answering(seeded_settings):
    async with running_app(seeded_settings) as client:
        status, lines = await chat_lines(client, {"message": CHAT_QUESTION})
    assert status == 200 and lines[-1]["type"] == "complete"
    calls = [line for line in lines if line["type"] == "tool_call"]
    assert [c["name"] for c in calls] == ["search_knowledge_base", "read_kb_article"]
    outputs = {line["name"]: line for line in lines if line["type"] == "tool output"}
    best = outputs["search_knowledge_base"]["sources"][0]["url"]
    assert json.loads(calls[1]["arguments"]) == {"url": best} and calls[1]["content"]
    assert [s["url"] for s in outputs["read_kb_article"]["sources"]] == [best]
    answer = answer_text(lines)
    assert answer.index(best) < answer.index("Sources:")  # the lead paragraph cites the article read in full
