# Where the synthetic corpus is generated (or already lives). Generated on first use by local/data.sh.
SYNTH_CORPUS=${SYNTH_CORPUS:-corpus}
