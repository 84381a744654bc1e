"""``python -m launch.rag index|retrieve|run|drag [flags]``: multilingual RAG (monoRAG, tRAG,
MultiRAG, CrossRAG, Dialectic RAG). The logic and the flag reference live in
``eurollm_jax.rag.cli`` (see docs/rag.md)."""

import sys

from eurollm_jax.rag.cli import main

if __name__ == "__main__":
    sys.exit(main())
