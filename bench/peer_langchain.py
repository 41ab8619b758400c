"""Peer (a): the minimal LangChain retriever a team would write, served with FastAPI.

Same model folder, same passages (read from the CiteQA index directory), FAISS inner product over
normalised e5 vectors with the model's own ``query``/``passage`` prompts. Run it with the LangChain venv::

    bench/.venvs/langchain/bin/python bench/peer_langchain.py --model DIR --passages FILE --port N
"""

from __future__ import annotations

import argparse
import json

import torch
import uvicorn
from fastapi import FastAPI
from langchain_community.vectorstores import FAISS
from langchain_community.vectorstores.utils import DistanceStrategy
from langchain_huggingface import HuggingFaceEmbeddings
from pydantic import BaseModel


class Query(BaseModel):
    question: str
    top_k: int = 5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--passages", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with open(args.passages, encoding="utf-8") as f:
        passages = [json.loads(line) for line in f]
    embeddings = HuggingFaceEmbeddings(
        model_name=args.model,
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True, "prompt_name": "passage"},
        query_encode_kwargs={"normalize_embeddings": True, "prompt_name": "query"},
    )
    store = FAISS.from_texts(
        [p["text"] for p in passages],
        embeddings,
        metadatas=[{"id": p["id"]} for p in passages],
        distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
    )
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/retrieve")
    def retrieve(q: Query) -> dict[str, list[dict[str, object]]]:
        hits = store.similarity_search_with_score(q.question, k=q.top_k)
        return {"passages": [{"id": d.metadata["id"], "score": float(s)} for d, s in hits]}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
