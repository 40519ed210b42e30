"""Token-id inputs on /v1/embeddings: what OpenAI's clients send when they tokenise themselves.

LangChain's `OpenAIEmbeddings` (with its default `check_embedding_ctx_length=True`) and other OpenAI
clients split texts with tiktoken's cl100k_base encoding and send the token ids. The server turns them
back into the texts (cl100k_base is lossless), which the model then tokenises with its own tokenizer, so
the vectors are those of the texts. This needs the optional `tiktoken` package (the `tokens` extra); its
encoding file is downloaded once on first use and cached, as tiktoken does for OpenAI's users
(`TIKTOKEN_CACHE_DIR` chooses the folder; put the file there beforehand on a machine without internet).
Without it, such requests get a 400 that says what to change on the client.
"""
from __future__ import annotations

import functools
import threading

from .errors import APIError

ENCODING = "cl100k_base"
CLIENT_FIX = ("or make the client send text: LangChain's OpenAIEmbeddings(..., check_embedding_ctx_length=False), "
              "or the openai client with strings")
_lock = threading.Lock()


class EncodingUnavailable(Exception):
    """tiktoken or its cl100k_base file cannot be had."""


@functools.lru_cache(maxsize=1)
def _cached_encoding():
    try:
        import tiktoken
    except ImportError:
        raise EncodingUnavailable("token id inputs need tiktoken on the server (pip install "
                                  "'qwen3-vl-embedding[tokens]')") from None
    try:
        return tiktoken.get_encoding(ENCODING)
    except Exception as e:  # noqa: BLE001 - a download or cache failure, whatever tiktoken raises
        raise EncodingUnavailable(f"token id inputs need tiktoken's {ENCODING} encoding, which could not be loaded "
                                  f"({type(e).__name__}: {e}); put the file in TIKTOKEN_CACHE_DIR on the server"
                                  ) from None


def encoding():
    """The cl100k_base encoding, loaded once (may download its file: call it off the event loop)."""
    with _lock:  # one download, however many requests arrive at once
        return _cached_encoding()


def reset() -> None:
    """Forget the loaded encoding (tests; after installing tiktoken in a running process)."""
    _cached_encoding.cache_clear()


def decode(token_ids: list[list[int]], param: str = "input") -> list[str]:
    """Each token-id list as its text; 400 naming the client setting when the encoding is unavailable,
    or the first id that is not a cl100k_base token."""
    try:
        enc = encoding()
    except EncodingUnavailable as e:
        raise APIError(400, f"{e}; {CLIENT_FIX}", param=param, code="token_ids_unsupported") from None
    texts = []
    for i, ids in enumerate(token_ids):
        bad = next((t for t in ids if not 0 <= t < enc.n_vocab), None)
        if bad is not None:
            raise APIError(400, f"{param}[{i}]: {bad} is not a {ENCODING} token id (0 to {enc.n_vocab - 1})",
                           param=f"{param}[{i}]", code="invalid_input")
        try:
            texts.append(enc.decode(ids))
        except Exception as e:  # noqa: BLE001 - ids inside the range that are no token (gaps in the vocabulary)
            raise APIError(400, f"{param}[{i}]: not {ENCODING} token ids ({e})", param=f"{param}[{i}]",
                           code="invalid_input") from None
    return texts
