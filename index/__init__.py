"""Finding passages: parse article files, chunk, embed, store in FAISS, search."""
