"""The canonical NumPy implementation of spec/; it defines the golden vectors."""
