"""Lexicon + n-gram CTC decoding, LM building, LM-weight search and scoring."""
