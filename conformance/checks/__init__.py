"""Checks beyond agreement with the goldens: `invariants` (property-based, spec/invariants.md)
and `profile` (which named alternative of each spec choice an implementation follows), each a
core that iterates the operation registry plus one module per operation that the operation's
registry entry names (`Operation.invariants`, `Operation.profile`); `strategies` draws inputs.
"""
