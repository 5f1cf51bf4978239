"""The zoo: every family trained on the same data with one budget, judged by the same code (`run.py`, behind
`hfgen zoo`), and its Space, which shows the families side by side (`space.py`)."""
