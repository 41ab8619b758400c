"""Measuring CiteQA: eval sets, benchmark converters, metrics and reports.

The pieces, in the order a batch evaluation uses them:

- ``seed.jsonl`` -- hand-written questions about the seed article in ``documents/`` (Chinese and
  English questions over the Chinese article, answerable and unanswerable).
- ``dataset`` -- load and validate an eval JSONL file into frozen ``EvalItem`` records, and decide
  whether a retrieved passage is relevant to an item (``is_relevant``).
- ``convert`` -- turn public SQuAD-style benchmarks (XQuAD, CMRC 2018) into a corpus folder and a
  questions file in the same JSONL format. The data stay outside the repository (CC BY-SA 4.0).
- ``metrics`` -- pure metric functions (recall@k, MRR, nDCG, answer hit, grounding, citation
  precision, abstention, latency percentiles) and ``summarise`` over per-question ``QuestionRecord``.
- ``report`` -- report.md with plots, TREC run files, side-by-side comparison of two summaries,
  and calibration of the abstention threshold.

Nothing here loads a model; the batch runner that fills ``QuestionRecord`` lives beside these.
"""
