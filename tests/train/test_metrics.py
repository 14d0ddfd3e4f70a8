import pytest
import torch
from torch import nn

from cnnbook import viz
from cnnbook.data import BatchTransform, TensorLoader
from cnnbook.train import predict
from cnnbook.train.metrics import classification_report, confusion_matrix, predict_image

# A small case counted by hand (class 1 has precision != recall, class 3 is never predicted).
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
Y_PRED = [0, 0, 1, 1, 1, 2, 2, 0, 2, 2]
NAMES = ["cat", "dog", "ship", "frog"]
# class: (TP, FP, FN) = cat (2, 1, 1), dog (2, 1, 0), ship (3, 1, 1), frog (0, 0, 1)
HAND = {"cat": (2 / 3, 2 / 3, 2 / 3, 3), "dog": (2 / 3, 1.0, 0.8, 2),
        "ship": (3 / 4, 3 / 4, 3 / 4, 4), "frog": (0.0, 0.0, 0.0, 1)}
HAND_CM = [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 3, 0], [0, 0, 1, 0]]


def test_report_matches_hand_count():
    rep = classification_report(torch.tensor(Y_TRUE), torch.tensor(Y_PRED), NAMES)
    assert list(rep.columns) == ["precision", "recall", "f1", "support"]
    assert list(rep.index) == NAMES + ["macro avg", "weighted avg"]
    for name, (p, r, f, s) in HAND.items():
        assert rep.loc[name, "precision"] == pytest.approx(p)
        assert rep.loc[name, "recall"] == pytest.approx(r)
        assert rep.loc[name, "f1"] == pytest.approx(f)
        assert rep.loc[name, "support"] == s
    hand = list(HAND.values())
    for col, i in (("precision", 0), ("recall", 1), ("f1", 2)):
        assert rep.loc["macro avg", col] == pytest.approx(sum(h[i] for h in hand) / 4)
        assert rep.loc["weighted avg", col] == pytest.approx(sum(h[i] * h[3] for h in hand) / 10)
    assert rep.loc["weighted avg", "support"] == 10
    # weighted recall is the accuracy: 7 of 10 correct
    assert rep.attrs["accuracy"] == pytest.approx(0.7)
    assert rep.loc["weighted avg", "recall"] == pytest.approx(0.7)


def test_report_agrees_with_sklearn_text_report():
    from sklearn.metrics import classification_report as sk_report

    sk = sk_report(Y_TRUE, Y_PRED, target_names=NAMES, output_dict=True, zero_division=0)
    rep = classification_report(Y_TRUE, Y_PRED, NAMES)
    for name in NAMES + ["macro avg", "weighted avg"]:
        assert rep.loc[name, "precision"] == pytest.approx(sk[name]["precision"])
        assert rep.loc[name, "recall"] == pytest.approx(sk[name]["recall"])
        assert rep.loc[name, "f1"] == pytest.approx(sk[name]["f1-score"])
        assert rep.loc[name, "support"] == sk[name]["support"]


def test_confusion_matrix_hand_count_and_viz_agree():
    cm = confusion_matrix(Y_TRUE, Y_PRED, NAMES)
    assert cm.values.tolist() == HAND_CM
    assert list(cm.index) == NAMES and list(cm.columns) == NAMES
    assert torch.equal(torch.tensor(cm.to_numpy()), viz.confusion_matrix(Y_TRUE, Y_PRED, 4))
    rec = confusion_matrix(Y_TRUE, Y_PRED, NAMES, normalize="true")
    assert rec.values.diagonal().tolist() == pytest.approx([HAND[n][1] for n in NAMES])


def test_random_labels_sklearn_and_viz_agree():
    g = torch.Generator().manual_seed(1)
    yt, yp = torch.randint(0, 10, (500,), generator=g), torch.randint(0, 10, (500,), generator=g)
    cm = confusion_matrix(yt, yp, [str(i) for i in range(10)])
    assert torch.equal(torch.tensor(cm.to_numpy()), viz.confusion_matrix(yt, yp, 10))
    rep = classification_report(yt, yp)  # names default to "0".."9"
    m = cm.to_numpy().astype(float)
    assert rep["recall"].iloc[:10].tolist() == pytest.approx((m.diagonal() / m.sum(1)).tolist())
    assert rep["precision"].iloc[:10].tolist() == pytest.approx((m.diagonal() / m.sum(0)).tolist())


def test_bad_input_messages():
    with pytest.raises(ValueError, match="labels but"):
        classification_report([0, 1], [0], NAMES)
    with pytest.raises(ValueError, match="must lie in"):
        confusion_matrix([0, 5], [0, 1], NAMES)


def _linear_model(c=1, hw=4, classes=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(c * hw * hw, classes))


def test_model_and_loader_path_equals_label_path():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (100, 1, 4, 4), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 3, (100,), generator=g)
    loader = TensorLoader(images, labels, 32, device="cpu")
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    model.train()
    preds, truth = predict(model, loader)
    a = classification_report(model, loader, ["a", "b", "c"])
    b = classification_report(truth, preds, ["a", "b", "c"])
    assert a.equals(b)
    assert confusion_matrix(model, loader, ["a", "b", "c"]).equals(
        confusion_matrix(truth, preds, ["a", "b", "c"]))
    assert model.training


def test_predict_image_topk_eval_mode_and_restore():
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(16, 5))
    model.train()
    img = torch.randint(0, 256, (1, 4, 4), dtype=torch.uint8)
    names = list("abcde")
    top = predict_image(model, img, names, k=3)
    assert model.training  # mode restored
    with torch.no_grad():
        model.eval()
        probs = torch.softmax(model((img.float() / 255)[None]), 1)[0]
    order = probs.argsort(descending=True)[:3]
    assert [c for c, _ in top] == [names[i] for i in order]
    assert [p for _, p in top] == pytest.approx(probs[order].tolist())
    assert all(type(p) is float for _, p in top)
    # a float image in [0, 1] gives the same answer; k larger than the classes is clipped
    model.train()
    again = predict_image(model, img.float() / 255, names, k=10)
    assert len(again) == 5 and sum(p for _, p in again) == pytest.approx(1.0)
    assert [c for c, _ in again[:3]] == [c for c, _ in top]
    assert [p for _, p in again[:3]] == pytest.approx([p for _, p in top])


def test_predict_image_with_loader_transform_and_callable():
    model = _linear_model(c=3, hw=4, classes=4)
    img = torch.randint(0, 256, (3, 4, 4), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    t = BatchTransform(mean=mean, std=std)
    top = predict_image(model, img, NAMES, transform=t, k=4)
    x = (img.float() / 255 - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    with torch.no_grad():
        probs = torch.softmax(model(x[None]), 1)[0]
    assert dict(top) == pytest.approx(dict(zip(NAMES, probs.tolist())))
    same = predict_image(model, img, NAMES, k=4,
                         transform=lambda im: (im.float() / 255 - torch.tensor(mean).view(3, 1, 1))
                         / torch.tensor(std).view(3, 1, 1))
    assert dict(same) == pytest.approx(dict(top))
    with pytest.raises(ValueError, match="one \\(C, H, W\\)"):
        predict_image(model, img[None], NAMES)
    with pytest.raises(ValueError, match="class names"):
        predict_image(model, img, NAMES[:3])


def test_mean_confidence_is_the_mean_top_softmax_probability_in_eval_mode():
    import torch
    from torch import nn

    from cnnbook.train.metrics import mean_confidence

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    X = torch.randn(10, 4)
    batches = [(X[:6], None), (X[6:], None)]
    model.train()
    with torch.no_grad():
        expected = torch.softmax(model[0](X), 1).max(1).values.mean().item()  # no dropout
    assert abs(mean_confidence(model, batches) - expected) < 1e-6
    assert model.training  # mode restored
