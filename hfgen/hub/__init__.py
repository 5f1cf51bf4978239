"""The Hub: model cards filled from a real run (`cards.py`), pushing a trained folder (`push.py`), and the
registration that lets diffusers download hfgen's own components (`components.py`)."""
