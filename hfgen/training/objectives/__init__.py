"""One objective per family: the only part of training that differs between them."""
