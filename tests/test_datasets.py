from collections import Counter

import pytest

from xfv.datasets import read_pairs


def _write(path, text):
    path.write_text(text)
    return path


def test_lfw_pairs_small(tmp_path):
    text = "2\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\nCid\t2\t4\nBob\t1\tCid\t1\n"
    _write(tmp_path / "pairs.txt", text)
    pairs = read_pairs("lfw", tmp_path).pairs
    assert [(p.fold, p.label) for p in pairs] == [(0, 1), (0, 0), (1, 1), (1, 0)]
    assert pairs[0].image1 == "Ann/Ann_0001.jpg" and pairs[0].image2 == "Ann/Ann_0002.jpg"
    assert (pairs[1].identity1, pairs[1].identity2) == ("Ann", "Bob")
    assert pairs[1].image2 == "Bob/Bob_0003.jpg"


@pytest.mark.parametrize(
    "text, message",
    [
        ("2\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\nCid\t2\t4\n", "announces 2 folds"),
        ("x\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\n", r"pairs.txt:1: malformed"),
        ("1\t1\nAnn\t1\nAnn\t1\tBob\t3\n", r"pairs.txt:2: malformed .* matched pair"),
        ("1\t1\nAnn\t1\t2\nAnn\t1\tBob\n", r"pairs.txt:3: malformed .* mismatched pair"),
        ("1\t1\nAnn\tone\t2\nAnn\t1\tBob\t3\n", r"pairs.txt:2: malformed .* image number"),
        ("", "empty"),
    ],
)
def test_lfw_pairs_malformed(tmp_path, text, message):
    _write(tmp_path / "pairs.txt", text)
    with pytest.raises(ValueError, match=message):
        read_pairs("lfw", tmp_path)


def test_two_line_format_folds_by_rank(tmp_path):
    # 20 genuine pairs first, then 20 imposter pairs (the CPLFW list's layout): 2 of each per fold.
    lines = [f"A_{i}.jpg 1\nA_{i + 1}.jpg 1\n" for i in range(20)] + [f"B_{i}.jpg 0\nC_{i}.jpg 0\n" for i in range(20)]
    _write(tmp_path / "pairs_CPLFW.txt", "".join(lines).replace("\n", "\r\n"))
    pairs = read_pairs("cplfw", tmp_path).pairs
    assert len(pairs) == 40
    assert Counter((p.fold, p.label) for p in pairs) == {(f, c): 2 for f in range(10) for c in (0, 1)}
    assert pairs[20].identity1 == "B" and pairs[20].image2 == "C_0.jpg"


def test_calfw_labels_one_to_ten_are_genuine(tmp_path):
    lines = []
    for fold in range(10):
        lines += [f"P_{fold}_0001.jpg {fold + 1}\nP_{fold}_0002.jpg {fold + 1}\n", f"Q_0001.jpg 0\nR_0001.jpg 0\n"]
    _write(tmp_path / "pairs_CALFW.txt", "".join(lines))
    pairs = read_pairs("calfw", tmp_path).pairs
    assert [p.fold for p in pairs if p.label == 1] == list(range(10))
    assert pairs[0].identity1 == "P_0"


def test_two_line_format_errors(tmp_path):
    _write(tmp_path / "pairs_CALFW.txt", "A_1.jpg 1\nA_2.jpg 1\nB_1.jpg 0\n")
    with pytest.raises(ValueError, match="odd number"):
        read_pairs("calfw", tmp_path)
    _write(tmp_path / "pairs_CALFW.txt", "A_1.jpg 1\nB_1.jpg 0\n")
    with pytest.raises(ValueError, match=r"pairs_CALFW.txt:1: .*disagree"):
        read_pairs("calfw", tmp_path)
    _write(tmp_path / "pairs_CALFW.txt", "A_1.jpg\nB_1.jpg 0\n")
    with pytest.raises(ValueError, match=r"pairs_CALFW.txt:1: malformed"):
        read_pairs("calfw", tmp_path)


def test_sllfw(tmp_path):
    lines = "".join(f"A/A_{i:04d}.jpg\nB/B_{i:04d}.jpg\n" for i in range(40))
    _write(tmp_path / "pair_SLLFW.txt", lines)
    pairs = read_pairs("sllfw", tmp_path).pairs
    assert [p.label for p in pairs[:4]] == [1, 1, 0, 0]
    assert [p.fold for p in pairs[:8]] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_csv_pairs(tmp_path):
    _write(tmp_path / "pairs.csv", "path1,path2,label\na/x_1.jpg,a/x_2.jpg,1\nb.jpg,c.jpg,0\n")
    pairs = read_pairs("csv", tmp_path).pairs
    assert [(p.label, p.fold) for p in pairs] == [(1, 0), (0, 0)]
    assert pairs[0].identity1 == "x"
    _write(tmp_path / "pairs.csv", "a.jpg,b.jpg,1,3\n")
    assert read_pairs("csv", tmp_path).pairs[0].fold == 3
    _write(tmp_path / "pairs.csv", "a.jpg,b.jpg,yes\n")
    with pytest.raises(ValueError, match=r"pairs.csv:1: malformed .*label"):
        read_pairs("csv", tmp_path)


def test_read_pairs_errors(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset format 'lfx'"):
        read_pairs("lfx", tmp_path)
    with pytest.raises(NotADirectoryError, match="not a directory"):
        read_pairs("lfw", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="--pairs"):
        read_pairs("lfw", tmp_path)


def test_real_lfw_and_cplfw_lists(shared_data):
    lfw = read_pairs("lfw", shared_data / "lfw")
    assert len(lfw) == 6000
    assert Counter((p.fold, p.label) for p in lfw.pairs) == {(f, c): 300 for f in range(10) for c in (0, 1)}
    assert all(lfw.path(p.image1).is_file() and lfw.path(p.image2).is_file() for p in lfw.pairs)
    cplfw = read_pairs("cplfw", shared_data / "lfw", shared_data / "cplfw" / "pairs_CPLFW.txt")
    assert Counter((p.fold, p.label) for p in cplfw.pairs) == {(f, c): 300 for f in range(10) for c in (0, 1)}
