"""Native integrations, installable as extras; each imports its framework only when used.

    langchain   Qwen3VLEmbeddings: LangChain `Embeddings` (texts, queries, images, any items)
                pip install 'qwen3-vl-embedding[langchain]'
    llamaindex  Qwen3VLMultiModalEmbedding: LlamaIndex `MultiModalEmbedding` (texts, queries, images)
                pip install 'qwen3-vl-embedding[llamaindex]'
    backends    what both embed with: the library in-process (any `contracts.Embedder`) or a `qvl serve` URL

Both give the library's vectors: in-process they call `Embedder.embed`; against a server they post the
same inputs to its /v1/embeddings, whose vectors are the library's.
"""
