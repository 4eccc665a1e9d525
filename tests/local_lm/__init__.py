import os

# Keep LiteLLM/DSPy from fetching model price maps over the (absent) network even without the root conftest.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
