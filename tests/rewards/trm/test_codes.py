"""The judge status/error codes that travel through verl's reward extra info, and their words."""

from sophiavl.rewards.trm.codes import describe_error, error_kind


def test_describe_error_words():
    assert describe_error(0) == "no error"
    assert describe_error(503) == "HTTP 503 (Service Unavailable)"
    assert describe_error(429.0) == "HTTP 429 (Too Many Requests)"  # codes arrive as floats
    assert describe_error(799) == "HTTP 799"
    assert describe_error(-1) == "timeout"
    assert describe_error(-2) == "connection error"
    assert describe_error(-3) == "unparseable reply"
    assert describe_error(-4) == "malformed response"
    assert describe_error(-5).startswith("unusable input")
    assert describe_error(-7) == "unknown error code -7"


def test_error_kind_names():
    assert [error_kind(c) for c in (0, 500, 404.0, -1, -2, -3, -4, -5, -9)] == [
        "none",
        "http",
        "http",
        "timeout",
        "connection",
        "unparseable",
        "malformed",
        "bad_input",
        "other",
    ]
