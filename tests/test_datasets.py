import re
from collections import Counter

import pytest

from xfv.datasets import read_pairs
from xfv.errors import XfvError


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
        lines += [f"P_{fold}_0001.jpg {fold + 1}\nP_{fold}_0002.jpg {fold + 1}\n", "Q_0001.jpg 0\nR_0001.jpg 0\n"]
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


def test_bom_header_spaces_and_lines(tmp_path):
    (tmp_path / "pairs.csv").write_bytes("\ufeffpath1 , path2, label ,fold\r\na.jpg,b.jpg,1,3\n\nc.jpg,d.jpg,0,9\n"
                                         .encode("utf-8"))
    pairs = read_pairs("csv", tmp_path).pairs
    assert [(p.image1, p.fold, p.line) for p in pairs] == [("a.jpg", 3, 2), ("c.jpg", 9, 4)]
    _write(tmp_path / "pairs.txt", "\ufeff1\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\n")
    assert [p.line for p in read_pairs("lfw", tmp_path).pairs] == [2, 3]


@pytest.mark.parametrize("dataset, name, data, line", [
    ("csv", "pairs.csv", "path1,path2,label\na.jpg,b.jpg,1\nJos\u00e9.jpg,c.jpg,0\n", 3),
    ("lfw", "pairs.txt", "1\t1\nAnn\t1\t2\nJos\u00e9\t1\tBob\t3\n", 3),
    ("calfw", "pairs_CALFW.txt", "Jos\u00e9_1.jpg 1\nA_2.jpg 1\n", 1),
])
def test_other_encodings_name_the_file_and_line(tmp_path, dataset, name, data, line):
    (tmp_path / name).write_bytes(data.encode("latin-1"))
    with pytest.raises(XfvError, match=rf"{name}:{line}: not UTF-8 text \(byte 0xe9\)"):
        read_pairs(dataset, tmp_path)


@pytest.mark.parametrize("dataset, name, text, message", [
    ("csv", "pairs.csv", "a.jpg,b.jpg,1,0\nc.jpg,d.jpg,0,-1\n", (r"pairs.csv:2: fold must be an integer from 0 to 9, "
                                                                 r"got '-1'")),
    ("csv", "pairs.csv", "a.jpg,b.jpg,1,99\n", r"pairs.csv:1: fold must be .* got '99'"),
    ("csv", "pairs.csv", "a.jpg,b.jpg,1,x\n", r"pairs.csv:1: fold must be .* got 'x'"),
    ("csv", "pairs.csv", "path1,path2,label\n", r"pairs.csv:1: the pair list has no pairs"),
    ("lfw", "pairs.txt", "99\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\n", r"pairs.txt:1: the header must announce 1 to 10 folds"),
    ("lfw", "pairs.txt", "1\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\nCid\t1\t2\n", (r"pairs.txt:4: the header \(line 1\) "
                                                                        r"announces 1 folds x 1 x 2 = 2 pairs")),
    ("lfw", "pairs.txt", "", r"pairs.txt:1: the pair list is empty"),
    ("calfw", "pairs_CALFW.txt", "A_1.jpg 1\nA_2.jpg 1\n\nB_1.jpg 0\n", r"pairs_CALFW.txt:4: two lines per pair"),
    ("sllfw", "pair_SLLFW.txt", "A/A_0001.jpg\nB/B_0001.jpg\n", r"pair_SLLFW.txt:1: 1 pairs up to this line"),
])
def test_errors_name_the_file_and_1_based_line(tmp_path, dataset, name, text, message):
    _write(tmp_path / name, text)
    with pytest.raises(XfvError, match=message):
        read_pairs(dataset, tmp_path)


@pytest.mark.parametrize("dataset, name, text, line, image", [
    ("csv", "pairs.csv", "a.jpg,b.jpg,1\n../x.jpg,b.jpg,0\n", 2, "../x.jpg"),
    ("csv", "pairs.csv", "a.jpg,/etc/passwd,1\n", 1, "/etc/passwd"),
    ("csv", "pairs.csv", "a/../../x.jpg,b.jpg,1\n", 1, "a/../../x.jpg"),
    ("lfw", "pairs.txt", "1\t1\nAnn\t1\t2\n..\t1\tBob\t3\n", 3, "../.._0001.jpg"),
])
def test_paths_stay_under_the_root_unless_allowed(tmp_path, dataset, name, text, line, image):
    _write(tmp_path / name, text)
    with pytest.raises(XfvError, match=rf"{name}:{line}: image path '{re.escape(image)}' leaves the dataset root.*"
                                       "--allow-outside-root"):
        read_pairs(dataset, tmp_path)
    assert image in {p for pair in read_pairs(dataset, tmp_path, allow_outside_root=True).pairs
                     for p in (pair.image1, pair.image2)}


def test_inner_dots_that_stay_inside_are_fine(tmp_path):
    _write(tmp_path / "pairs.csv", "a/../b.jpg,./c.jpg,1\n")
    assert read_pairs("csv", tmp_path).pairs[0].image1 == "a/../b.jpg"
    _write(tmp_path / "pairs.csv", ",c.jpg,1\n")
    with pytest.raises(XfvError, match="pairs.csv:1: an image path is empty"):
        read_pairs("csv", tmp_path)


HUGE = "9" * 5000  # int() refuses more than 4,300 digits, with a message that names neither file nor line


@pytest.mark.parametrize("dataset, name, text, message", [
    ("lfw", "pairs.txt", f"1\t1\nAnn\t{HUGE}\t2\nAnn\t1\tBob\t3\n", (r"pairs.txt:2: malformed .* image number \(at most "
                                                                    r"9 digits\), got 'Ann\\t9{76}'\.\.\. \(5006 characters\)")),
    ("lfw", "pairs.txt", f"{HUGE}\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\n", r"pairs.txt:1: malformed pair list line"),
    ("lfw", "pairs.txt", "1\t1\nAnn\t\u00b2\t2\nAnn\t1\tBob\t3\n", r"pairs.txt:2: malformed .* image number"),
    ("calfw", "pairs_CALFW.txt", f"A_1.jpg {HUGE}\nA_2.jpg 1\n", r"pairs_CALFW.txt:1: malformed .* integer label"),
    ("csv", "pairs.csv", f"a.jpg,b.jpg,1,{HUGE}\n", (r"pairs.csv:1: fold must be an integer from 0 to 9, got '9{80}'\.\.\. "
                                                    r"\(5000 characters\)")),
])
def test_huge_numbers_name_the_file_and_line(tmp_path, dataset, name, text, message):
    _write(tmp_path / name, text)
    with pytest.raises(XfvError, match=message):
        read_pairs(dataset, tmp_path)


@pytest.mark.parametrize("name, message", [
    ("a/b", "contains '/'"), ("a\\b", "contains '\\\\\\\\'"), ("a\x00b", "contains '\\\\x00'"), ("..", "is a path"),
    ("x" * 101, "must have 1 to 100 characters, not 101"),
])
def test_dataset_names_that_cannot_be_a_url_segment_are_refused(tmp_path, name, message):
    _write(tmp_path / "pairs.csv", "a.jpg,b.jpg,1\n")
    with pytest.raises(XfvError, match=f"Dataset name .*{message}"):
        read_pairs("csv", tmp_path, name=name)
    assert read_pairs("csv", tmp_path, name="lfw (deep-funneled) #2").name == "lfw (deep-funneled) #2"
