import numpy as np
import pytest

from xfv.verification import accuracy, best_threshold, cosine_distance, kfold_verification


def test_cosine_distance_known_values():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    np.testing.assert_allclose(cosine_distance(a, b), [0.0, 1.0, 2.0])
    assert cosine_distance(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == pytest.approx(0.0)


@pytest.mark.parametrize(
    "a, b, message",
    [
        (np.ones((2, 3)), np.ones((3, 3)), "same shape"),
        (np.zeros(3), np.ones(3), "zero embedding"),
        (np.array([np.nan, 1.0]), np.ones(2), "NaN"),
    ],
)
def test_cosine_distance_errors(a, b, message):
    with pytest.raises(ValueError, match=message):
        cosine_distance(a, b)


def test_best_threshold_hand_example():
    # genuine at 0.1, 0.2, 0.4; imposter at 0.3, 0.5, 0.6: the cut between 0.2 and 0.3 and the one between
    # 0.4 and 0.5 both give 5/6; the smaller one (0.25) wins.
    distances = np.array([0.1, 0.2, 0.4, 0.3, 0.5, 0.6])
    labels = np.array([1, 1, 1, 0, 0, 0])
    assert best_threshold(distances, labels) == pytest.approx(0.25)
    assert accuracy(distances, labels, 0.25) == pytest.approx(5 / 6)


def test_best_threshold_never_splits_ties():
    distances = np.array([0.2, 0.2, 0.5])
    labels = np.array([1, 0, 0])
    # A cut between the two 0.2s would "get all three right"; a threshold cannot do that.
    t = best_threshold(distances, labels)
    assert t == pytest.approx(0.2 - 1e-6)
    assert accuracy(distances, labels, t) == pytest.approx(2 / 3)


def test_kfold_hand_example():
    # Two folds. Fold 0: genuine 0.1, imposter 0.9. Fold 1: genuine 0.6, imposter 0.4 (a hard fold).
    distances = np.array([0.1, 0.9, 0.6, 0.4])
    labels = np.array([1, 0, 1, 0])
    folds = np.array([0, 0, 1, 1])
    report = kfold_verification(distances, labels, folds)
    # t_0 is chosen on fold 1 alone: "everything different" (t below 0.4) and t = 0.6 both get 1 of 2 right;
    # the smaller wins. On fold 0 it gets both right.
    assert report.folds[0].threshold == pytest.approx(0.4 - 1e-6)
    assert report.folds[0].accuracy == 1.0
    # t_1 is chosen on fold 0 alone: the midpoint 0.5 gets both right; on fold 1 it gets both wrong.
    assert report.folds[1].threshold == pytest.approx(0.5)
    assert report.folds[1].accuracy == 0.0
    assert report.accuracy_mean == pytest.approx(0.5)
    assert report.accuracy_std == pytest.approx(0.5)
    np.testing.assert_array_equal(report.predictions, [True, False, False, True])
    np.testing.assert_array_equal(report.correct, [True, True, False, False])


@pytest.mark.parametrize(
    "distances, labels, folds, message",
    [
        ([0.1, 0.2], [1, 2], [0, 1], "labels must be 1"),
        ([0.1, np.nan], [1, 0], [0, 1], "NaN"),
        ([0.1, 0.2], [1, 0], [0, 0], "at least 2 folds"),
        ([], [], [], "empty"),
        ([0.1, 0.2], [1], [0, 1], "equal length"),
    ],
)
def test_kfold_errors(distances, labels, folds, message):
    with pytest.raises(ValueError, match=message):
        kfold_verification(np.array(distances, dtype=float), np.array(labels), np.array(folds))
