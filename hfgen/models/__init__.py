"""The four families. Models import nothing from training, hub or cli."""
