"""The registration mechanism: our classes appear in ESPnet's own registries and parsers."""
import subprocess
import sys
import textwrap

from conftest import run_module

_SCRIPT = textwrap.dedent(
    """
    import sys
    import dinosr_espnet
    from dinosr_espnet.registry import add_registration
    assert "espnet2.tasks.asr" not in sys.modules, "import dinosr_espnet must not import ESPnet"
    # registered before ESPnet is imported: the import hook must apply it
    add_registration("espnet2.tasks.asr", "encoder_choices", "Unit_Test_Encoder",
                     "espnet2.asr.encoder.rnn_encoder:RNNEncoder")
    from espnet2.tasks.asr import ASRTask, encoder_choices
    from espnet2.asr.encoder.rnn_encoder import RNNEncoder
    assert encoder_choices.get_class("unit_test_encoder") is RNNEncoder
    # registered after ESPnet is imported: applied at once
    add_registration("espnet2.tasks.abs_task", "scheduler_classes", "unit_test_scheduler",
                     "torch.optim.lr_scheduler:LambdaLR")
    from espnet2.tasks import abs_task
    assert "unit_test_scheduler" in abs_task.scheduler_classes
    ASRTask.get_parser().print_help()
    """
)


def test_registered_class_is_listed_by_espnet_parser():
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "unit_test_encoder" in proc.stdout
    assert "unit_test_scheduler" in proc.stdout


def test_asr_train_entry_point_help_lists_espnet_options():
    proc = run_module("dinosr_espnet.bin.asr_train", "--help", timeout=300)
    assert "--encoder_conf" in proc.stdout
    assert "--train_data_path_and_name_and_type" in proc.stdout
