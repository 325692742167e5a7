"""pytest11 plugin: options that point the conformance suite at an implementation."""
