"""The CLI shows one readable error even when concurrent tasks fail together."""

from gleitzeit_core.errors import StoreUnavailable, primary


def test_group_of_concurrent_failures_shows_the_gleitzeit_error():
    store_gone = StoreUnavailable("redis backend unreachable at redis://127.0.0.1:1/0")
    group = ExceptionGroup("tg", [RuntimeError("side effect"), ExceptionGroup("inner", [store_gone, store_gone])])
    assert primary(group) is store_gone


def test_single_nested_error_is_unwrapped_and_plain_errors_pass_through():
    err = ValueError("x")
    assert primary(ExceptionGroup("a", [ExceptionGroup("b", [err])])) is err
    assert primary(err) is err
