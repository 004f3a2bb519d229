import pytest

from harness.errors import HarnessError
from harness.scoring.groundtruth import check_against_enumeration
from harness.spaces.nb201.arch import EXAMPLE, NUM_ARCHS, OPS, Arch, all_archs
from harness.spaces.nb201.isomorphism import canonical_form, unique_groups


def test_example_string_round_trips_exactly():
    arch = Arch.parse(EXAMPLE)
    assert str(arch) == EXAMPLE
    assert arch.op_names() == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")


def test_enumeration_has_every_cell_once_and_codes_invert():
    archs = all_archs()
    assert len(archs) == NUM_ARCHS == 5**6
    assert [a.code for a in archs] == list(range(NUM_ARCHS))
    assert all(Arch.from_code(a.code) == a for a in archs[::97])


def test_every_ground_truth_string_parses_and_prints_identically(ground_truth):
    for text in ground_truth.table["arch"]:
        assert str(Arch.parse(text)) == text
    check_against_enumeration(ground_truth)


def test_benchmark_index_comes_from_the_table(ground_truth):
    index0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    assert ground_truth.index_of(Arch.parse(index0)) == 0
    assert str(ground_truth.arch_of(1)) == EXAMPLE
    # The published CIFAR-10 optimum sits at index 6111.
    assert ground_truth.table["cifar10_test"].idxmax() == 6111


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "node groups"),
        ("nor_conv_3x3~0|+|a~0|b~1|+|c~0|d~1|e~2|", "must start and end"),
        ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown NB201 op 'conv_5x5'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 has 1 inputs"),
    ],
)
def test_malformed_strings_give_one_line_errors(text, fragment):
    with pytest.raises(HarnessError) as err:
        Arch.parse(text)
    message = str(err.value)
    assert fragment in message and "\n" not in message
    assert text in message or fragment.startswith("unknown")


def test_out_of_space_codes_are_rejected():
    with pytest.raises(HarnessError, match="out of range"):
        Arch.from_code(NUM_ARCHS)
    with pytest.raises(HarnessError, match="op indices"):
        Arch((0, 1, 2, 3, 4, len(OPS)))


def test_isomorphism_merges_known_equivalences():
    a = Arch.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    # Edge 2<-0 / 2<-1 both none: node 2 is zero, so what node 3 computes from it is irrelevant.
    b = Arch.parse("|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    assert canonical_form(a) == canonical_form(b)
    # Swapping the order of two summed terms (edges into node 3 from nodes 0 and 1 via identical paths).
    c = Arch.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|")
    d = Arch.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|")
    assert canonical_form(c) == canonical_form(d)
    e = Arch.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|")
    assert canonical_form(c) != canonical_form(e)


def test_unique_counts_and_why_they_differ():
    archs = all_archs()
    # NAS-Bench-201's own string rule reproduces the literature's 6,466 de-isomorphic cells.
    assert len(unique_groups(archs, "nb201")) == 6466
    # The exact algebra merges more: NB201 keeps a zero term in a sum ('x + 0' stays apart from 'x'),
    # and splices a skipped sum as text, so 1,536 of its classes are functionally equal to others.
    strict = unique_groups(archs, "strict")
    assert len(strict) == 4930
    x_plus_zero = Arch.parse("|skip_connect~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    x_alone = Arch.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert canonical_form(x_plus_zero, "strict") == canonical_form(x_alone, "strict")
    # Every strict class is a union of nb201 classes: the strict rule only merges, never splits.
    nb201_of = {a: canonical_form(a, "nb201") for a in archs}
    merged = sum(len({nb201_of[a] for a in members}) - 1 for members in strict.values())
    assert merged == 6466 - 4930
