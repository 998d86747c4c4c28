"""Hooks for the schemathesis run against the local stack (loaded through SCHEMATHESIS_HOOKS).

A page cursor is opaque: only the cursors a list returned are valid, and any other answers the
documented 400 (test_inputs.py forges some). No schema can say which strings a list returned,
so generated requests go without one rather than count a made-up cursor's 400 as a refusal of
valid input.
"""

import schemathesis


@schemathesis.hook
def map_query(context, query):
    if query and "cursor" in query:
        query = {name: value for name, value in query.items() if name != "cursor"}
    return query

