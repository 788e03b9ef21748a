"""What the fuzz tests share: hypothesis strategies for odd JSON values and for changed versions of a valid document,
and the settings every fuzz test runs with (bounded, derandomized: reproducible)."""
from hypothesis import HealthCheck, settings, strategies as st

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

ODD = st.sampled_from([None, True, False, 0, -1, 1, 2, 7, 20, 99, 999, 1000, 100_001, 2**63, -2**63, 1.5, -0.0, 1e308,
                       "", " ", "01", "1", "x", "07_attention", "module_01", "\u202eevil", "cs101/bob", "ada", "ada lovelace",
                       "2025-11-16T10:00:00", "2025-11-16T10:00:00Z", "2099-01-01T00:00:00+14:00", "yesterday", "1.0", "2.0",
                       "A", "F", "stored", "{'ok': True}", "Error: x", "\x00", "é" * 300, [], {}, [1], {"a": 1}])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=8) | ODD, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                    max_leaves=8)


@st.composite
def mutated(draw, value, depth=0):
    "`value` with some parts replaced, dropped or added (deeper parts less often)."
    if depth > 4 or draw(st.integers(0, 9)) == 0: return draw(st.one_of(ODD, JSON)) if draw(st.booleans()) else value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            what = draw(st.sampled_from(["keep", "keep", "keep", "mutate", "drop", "replace"]))
            if what == "drop": continue
            out[k] = v if what == "keep" else draw(mutated(v, depth + 1)) if what == "mutate" else draw(st.one_of(ODD, JSON))
        for k, v in draw(st.dictionaries(st.sampled_from(["extra", "version", "user_id", "x", "total_unlocked"]), JSON, max_size=2)).items():
            out.setdefault(k, v)
        return out
    if isinstance(value, list):
        out = [draw(mutated(v, depth + 1)) if draw(st.booleans()) else v for v in value if draw(st.integers(0, 5))]
        return out + draw(st.lists(st.one_of(ODD, *(st.just(v) for v in value[:1])), max_size=2))
    return draw(st.one_of(ODD, st.just(value)))
