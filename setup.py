"""dinosr-espnet: DinoSR self-supervised speech pre-training as an ESPnet plug-in.

Every Python dependency of the project is pinned here and only here.
"""
from setuptools import find_packages, setup

# torch 2.12.1 is the newest torch whose metadata allows espnet's setuptools<74 pin;
# torchaudio 2.11.0 declares no torch pin and runs on it (toolchain_facts section 2).
INSTALL_REQUIRES = [
    "torch==2.12.1",
    "torchaudio==2.11.0",
    "espnet==202511",
    "matplotlib",
    "tensorboard",
    "sentencepiece",
    "kaldiio",
    "soundfile",
    "pyyaml",
    "sacrebleu",
    "flashlight-text==0.0.7",
    "camel-kenlm",
    "jiwer",
    "editdistance",
    "numpy",
    # the official fairseq checkpoint's cfg is an omegaconf DictConfig, rebuilt by checkpoint_io's
    # allow-list (also a dependency of espnet through hydra-core)
    "omegaconf",
]

REFERENCE_MODEL = "transformers==5.24.0"
EXTRAS_REQUIRE = {
    # transformers: Hugging Face's Data2VecAudioModel is the independent reference that the parity
    # test (tests/nets/test_reference_parity.py) and the benchmark compare the student with.
    "test": ["pytest", "pytest-timeout", REFERENCE_MODEL],
    "bench": [REFERENCE_MODEL],
    # transformers: bin.export_hf writes Data2VecAudioModel / Data2VecAudioForCTC directories (safetensors)
    "export": [REFERENCE_MODEL],
}

setup(
    name="dinosr_espnet",
    version="0.1.0",
    description="DinoSR (arXiv 2305.10005) pre-training, CTC fine-tuning and LM decoding as ESPnet recipes",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["dinosr_espnet", "dinosr_espnet.*"]),
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license="Apache-2.0",
)
