# Where existing copies of the corpora live. Leave a variable empty to download into --download_dir.
# LIBRISPEECH:   the extracted LibriSpeech/ directory (train-clean-100/, dev-clean/, ...)
# LIBRILIGHT_FT: the extracted librispeech_finetuning/ directory (1h/, 9h/)
# LIBRISPEECH_LM: directory holding 4-gram.arpa.gz, librispeech-lexicon.txt, librispeech-lm-norm.txt.gz
LIBRISPEECH=${LIBRISPEECH:-}
LIBRILIGHT_FT=${LIBRILIGHT_FT:-}
LIBRISPEECH_LM=${LIBRISPEECH_LM:-}
