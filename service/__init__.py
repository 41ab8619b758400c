"""Answering questions: settings, HTTP API, answerer, grounding check, chat page, CLI."""
