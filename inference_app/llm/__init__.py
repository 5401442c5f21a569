"""The model layer: every call to a language model goes through here.

It knows nothing of Django views or ticket models: it takes and returns plain data
(:mod:`inference_app.llm.types`). Heavy libraries (llama_cpp) are imported lazily.
"""
