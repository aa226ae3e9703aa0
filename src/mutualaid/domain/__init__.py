"""Pure rules of a mutual aid plan. No I/O: time, ids and randomness come in as arguments."""
