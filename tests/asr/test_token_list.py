"""The char token list: ESPnet char style for the paper's letter dictionary."""
from espnet2.text.char_tokenizer import CharTokenizer

from dinosr_espnet.asr.token_list import char_token_list, write_char_token_list


def test_written_token_list_has_blank_first_and_sos_eos_last(tmp_path):
    path = write_char_token_list(tmp_path / "token_list" / "char" / "tokens.txt")
    tokens = path.read_text().splitlines()
    assert tokens == char_token_list()
    assert tokens[0] == "<blank>" and tokens[-1] == "<sos/eos>"
    assert tokens[1:4] == ["<unk>", "<space>", "'"]
    assert [token for token in tokens if len(token) == 1 and token.isalpha()] == [chr(c) for c in range(65, 91)]
    assert len(set(tokens)) == len(tokens) == 31


def test_espnet_char_tokenizer_covers_librispeech_transcripts():
    tokens = CharTokenizer().text2tokens("IT'S THE CAT'S HAT")
    assert "<space>" in tokens and set(tokens) <= set(char_token_list())
